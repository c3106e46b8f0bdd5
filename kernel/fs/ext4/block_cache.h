// The metadata blocks of one ext4 volume in memory: superblock, group descriptors, bitmaps, inode
// tables, directories and extent tree blocks. A changed block stays dirty here until the journal
// commits it (journal.h), so the home location on the device never holds half an operation.
// File data bypasses the cache: it is written to its blocks at once (data=ordered, as ext4's
// default: the commit that makes a block part of a file comes after the block's data).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "drivers/block/device.h"
#include "lib/vector.h"

namespace kiln::fs::ext4 {

struct Buffer {
    uint64_t block = 0;
    uint8_t* data = nullptr;
    bool dirty = false;
    Buffer* next = nullptr;  // hash chain
};

class BlockCache {
  public:
    BlockCache(block::Device& device, uint32_t block_size);
    ~BlockCache();
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;

    uint32_t block_size() const { return block_size_; }
    block::Device& device() { return device_; }

    // The block's buffer, read from the device on first use; null on an I/O error or no memory.
    // Valid until the next trim().
    Buffer* get(uint64_t block);
    // A buffer for a block about to be overwritten whole: not read, zero-filled.
    Buffer* get_zeroed(uint64_t block);
    void mark_dirty(Buffer& buffer);
    // Drops a freed block's buffer (dirty or not): its contents no longer matter, and the block
    // may next hold file data, which the journal must never overwrite.
    void forget(uint64_t block);
    const Vector<Buffer*>& dirty() const { return dirty_; }
    // After a commit: every dirty buffer is clean again.
    void mark_all_clean();
    // Frees clean buffers once there are more than a bound; only between operations, when no
    // buffer pointer is held.
    void trim();

    // Direct device access in whole blocks (file data, the journal).
    int read_blocks(uint64_t block, void* data, size_t count);
    int write_blocks(uint64_t block, const void* data, size_t count);

  private:
    static constexpr size_t kBuckets = 1024;
    static constexpr size_t kMaxCleanBuffers = 4096;
    bool on_device(uint64_t block, size_t count) const;
    Buffer* find(uint64_t block);
    Buffer* insert(uint64_t block);
    void destroy(Buffer* b);

    block::Device& device_;
    uint32_t block_size_;
    Buffer* buckets_[kBuckets] = {};
    size_t count_ = 0;
    Vector<Buffer*> dirty_;
};

}  // namespace kiln::fs::ext4
