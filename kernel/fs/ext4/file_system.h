// An ext4 volume, mounted: its superblock and group descriptors, block and inode allocation,
// inodes, and the nodes the VFS sees (node.h). Every change to metadata goes through the block
// cache and reaches the device only through the journal (journal.h): a commit on fsync, sync,
// when the transaction grows large, and at unmount.
//
// Operations are atomic with respect to commits: a commit only starts between them
// (begin_operation), and kernel code is not preemptible (block/device.h).
#pragma once

#include <stdint.h>

#include "drivers/block/device.h"
#include "fs/ext4/block_cache.h"
#include "fs/ext4/format.h"
#include "fs/ext4/journal.h"
#include "fs/node.h"
#include "lib/cmdline.h"
#include "lib/vector.h"

namespace kiln::fs::ext4 {

class Ext4Node;

class FileSystem {
  public:
    // Mounts the volume on `device`, replaying its journal first if it was not unmounted cleanly.
    // On failure returns a negative errno and points `error` at a sentence saying why.
    static int64_t mount(block::Device& device, bool read_only, FileSystem*& out, const char*& error);
    ~FileSystem();

    RefPtr<Node> root();
    bool read_only() const { return read_only_; }
    uint32_t block_size() const { return cache_.block_size(); }
    BlockCache& cache() { return cache_; }

    // Commits what changed (fsync, sync). 0 or a negative errno.
    int64_t sync();
    // Commits and marks the volume clean; the file system stays usable, read-only.
    int64_t unmount();

    // For the nodes.
    // Called first by every operation that changes the volume: commits if the transaction is
    // large, trims the cache. -EROFS on a read-only mount.
    int64_t begin_operation();
    RefPtr<Ext4Node> node(uint32_t ino);
    // A node made for a new inode joins the ones in memory; false if out of memory.
    bool track(Ext4Node* node) { return live_.push_back(node); }
    void node_destroyed(Ext4Node* node);
    int64_t load_inode(uint32_t ino, Inode& out);
    int64_t store_inode(uint32_t ino, const Inode& inode);
    // A free inode (0 if none), marked used.
    uint32_t allocate_inode(bool directory);
    void free_inode(uint32_t ino, bool directory);
    // Up to `count` free blocks in a row, preferring `goal`; returns the first (0: none) and sets
    // `got`.
    uint64_t allocate_blocks(uint64_t goal, uint32_t count, uint32_t& got);
    void free_blocks(uint64_t start, uint32_t count);
    bool has_pending_frees() const { return !freed_.empty(); }
    uint32_t now() const;

  private:
    FileSystem(block::Device& device, uint32_t block_size, bool read_only);
    int64_t load(const char*& error);
    GroupDescriptor& group(uint32_t index);
    void mark_group_dirty(uint32_t index);
    Superblock& super();
    void mark_super_dirty();
    bool recently_freed(uint64_t block) const;
    uint64_t blocks_count() const;
    int64_t write_super_now();

    BlockCache cache_;
    Journal journal_;
    bool read_only_;
    uint64_t super_block_ = 0;   // the block holding the superblock
    uint32_t super_offset_ = 0;  // its offset in that block
    uint64_t gdt_block_ = 0;     // the group descriptor table's first block
    uint32_t group_count_ = 0;
    uint32_t blocks_per_group_ = 0;
    uint32_t inodes_per_group_ = 0;
    uint32_t inode_size_ = 0;
    uint32_t first_data_block_ = 0;
    bool clean_ = false;  // unmounted
    // Blocks freed since the last commit: not reused until it, so a crash cannot leave a block
    // in the committed file system holding another file's new data.
    struct Range {
        uint64_t start;
        uint32_t count;
    };
    Vector<Range> freed_;
    Vector<Ext4Node*> live_;  // the nodes in memory, one per inode (not owned)
};

// Mounts every volume the command line's `kiln.volume=PATH[:ro]` parameters name, device i at
// the i-th. Messages go to the console; a volume that does not mount is skipped. False (nothing
// mounted) if a parameter is bad: the instance cannot start.
bool mount_volumes(const Cmdline& cmdline);
// Commits every mounted volume (sync(2)).
void sync_volumes();
// Commits and marks every volume clean, before the instance ends.
void unmount_volumes();

}  // namespace kiln::fs::ext4
