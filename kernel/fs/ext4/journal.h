// The volume's jbd2 journal (inode 8): replayed at mount if the volume was not unmounted
// cleanly, and the way every metadata change reaches the device.
//
// A commit writes the transaction (descriptor blocks naming the metadata blocks, their new
// contents, then a commit block) to the journal's start, flushes, writes each block home
// (checkpoint), flushes, and moves the journal's sequence on. The journal holds at most one
// transaction, so revoke records are never needed; a crash before the commit block leaves the
// volume as the last commit left it, after it a replay (ours at the next mount, or
// `e2fsck -fy`'s) finishes the checkpoint. The format is jbd2's without checksums or 64-bit
// block numbers, as mke2fs writes it for the features format.h lists.
#pragma once

#include <stdint.h>

#include "fs/ext4/block_cache.h"
#include "fs/ext4/format.h"
#include "lib/vector.h"

namespace kiln::fs::ext4 {

class Journal {
  public:
    explicit Journal(BlockCache& cache) : cache_(cache) {}
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    // Reads the journal through `journal_inode`'s extents and replays what was committed in it.
    // `replayed`: transactions written home.
    int64_t open(const Inode& journal_inode, uint32_t& replayed, const char*& error);
    // Marks the journal in use (jbd2's s_start set), so an unclean stop is recovered.
    int64_t start();
    // Marks it empty (s_start = 0), after a last commit.
    int64_t stop();
    // Blocks of metadata one transaction may hold.
    uint32_t capacity() const { return capacity_; }
    // Writes every dirty buffer of the cache through the journal, then home.
    int64_t commit();

  private:
    struct Run {
        uint32_t logical;
        uint64_t physical;
        uint32_t length;
    };
    uint64_t physical(uint32_t logical) const;
    int64_t read_log(uint32_t logical, uint8_t* block);
    int64_t write_log(uint32_t logical, const uint8_t* block);
    int64_t write_superblock(uint32_t start);
    int64_t replay(uint32_t& replayed, const char*& error);
    uint32_t tags_per_descriptor() const;

    BlockCache& cache_;
    Vector<Run> runs_;
    uint8_t* superblock_ = nullptr;  // the journal's superblock as read (block_size bytes)
    uint32_t first_ = 0;             // the log's first block (after the superblock)
    uint32_t length_ = 0;            // the log's blocks, superblock included
    uint32_t sequence_ = 0;          // the next transaction's
    uint32_t capacity_ = 0;
    uint8_t uuid_[16] = {};
};

}  // namespace kiln::fs::ext4
