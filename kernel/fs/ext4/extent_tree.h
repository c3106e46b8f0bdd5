// A file's blocks: the extent tree rooted in its inode's i_block. Reading follows trees of any
// depth; changing them keeps to depth 1 (four leaf blocks of 340 extents each with 4 KiB
// blocks), which covers every file a run of allocations in a row gives, and refuses more with
// EFBIG rather than corrupt anything.
#pragma once

#include <stdint.h>

#include "fs/ext4/block_cache.h"
#include "fs/ext4/format.h"

namespace kiln::fs::ext4 {

class FileSystem;

struct Mapping {
    uint64_t physical;  // 0: a hole
    uint32_t length;    // blocks from `logical` mapped in a row (or a hole as long), at least 1
    bool unwritten;     // allocated but not written (fallocate): reads as zeros, not writable here
};

// Where file block `logical` is. 0 or a negative errno (EIO; EUCLEAN for a damaged tree).
int64_t map_block(BlockCache& cache, const Inode& inode, uint32_t logical, Mapping& out);

// Every extent in file order: visit(context, logical, physical, length) returns false to stop.
using ExtentVisitor = bool (*)(void* context, uint32_t logical, uint64_t physical, uint32_t length);
int64_t for_each_extent(BlockCache& cache, const Inode& inode, ExtentVisitor visit, void* context);

// An empty tree in `inode` (a new file or directory).
void init_extent_root(Inode& inode);
// Maps `length` blocks from `logical` to `physical` on (the range must be a hole); merges with
// the extent before when they touch. Extent blocks it allocates are counted in i_blocks.
int64_t add_extent(FileSystem& fs, Inode& inode, uint32_t logical, uint64_t physical, uint32_t length);
// Unmaps and frees every block from `logical` on (truncate), extent blocks included.
int64_t remove_extents_from(FileSystem& fs, Inode& inode, uint32_t logical);

}  // namespace kiln::fs::ext4
