// ext4's and jbd2's on-disk structures, the parts this driver reads and writes (the kernel's
// Documentation/filesystems/ext4 and e2fsprogs' ext2_fs.h / kernel-jbd.h are the references).
// ext4 is little-endian; the journal (jbd2) is big-endian.
//
// The features a volume may have are the ones `mke2fs -t ext4 -O ^metadata_csum,^64bit,
// ^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file` leaves: has_journal, ext_attr,
// filetype, extent, flex_bg, sparse_super, large_file, dir_nlink, extra_isize. Anything else
// incompatible refuses the mount, by name.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::fs::ext4 {

inline constexpr uint64_t kSuperblockOffset = 1024;
inline constexpr uint16_t kMagic = 0xef53;
inline constexpr uint32_t kRootInode = 2;
inline constexpr uint32_t kJournalInode = 8;

// s_feature_compat
inline constexpr uint32_t kCompatHasJournal = 0x4;
inline constexpr uint32_t kCompatExtAttr = 0x8;
inline constexpr uint32_t kCompatResizeInode = 0x10;
inline constexpr uint32_t kCompatDirIndex = 0x20;
// s_feature_incompat
inline constexpr uint32_t kIncompatFiletype = 0x2;
inline constexpr uint32_t kIncompatRecover = 0x4;
inline constexpr uint32_t kIncompatExtents = 0x40;
inline constexpr uint32_t kIncompat64bit = 0x80;
inline constexpr uint32_t kIncompatFlexBg = 0x200;
inline constexpr uint32_t kIncompatSupported =
    kIncompatFiletype | kIncompatRecover | kIncompatExtents | kIncompatFlexBg;
// s_feature_ro_compat
inline constexpr uint32_t kRoCompatSparseSuper = 0x1;
inline constexpr uint32_t kRoCompatLargeFile = 0x2;
inline constexpr uint32_t kRoCompatDirNlink = 0x20;
inline constexpr uint32_t kRoCompatExtraIsize = 0x40;
inline constexpr uint32_t kRoCompatSupported =
    kRoCompatSparseSuper | kRoCompatLargeFile | kRoCompatDirNlink | kRoCompatExtraIsize;

struct Superblock {
    uint32_t inodes_count;
    uint32_t blocks_count_lo;
    uint32_t r_blocks_count_lo;
    uint32_t free_blocks_count_lo;
    uint32_t free_inodes_count;
    uint32_t first_data_block;
    uint32_t log_block_size;
    uint32_t log_cluster_size;
    uint32_t blocks_per_group;
    uint32_t clusters_per_group;
    uint32_t inodes_per_group;
    uint32_t mtime;
    uint32_t wtime;
    uint16_t mnt_count;
    uint16_t max_mnt_count;
    uint16_t magic;
    uint16_t state;
    uint16_t errors;
    uint16_t minor_rev_level;
    uint32_t lastcheck;
    uint32_t checkinterval;
    uint32_t creator_os;
    uint32_t rev_level;
    uint16_t def_resuid;
    uint16_t def_resgid;
    uint32_t first_ino;
    uint16_t inode_size;
    uint16_t block_group_nr;
    uint32_t feature_compat;
    uint32_t feature_incompat;
    uint32_t feature_ro_compat;
    uint8_t uuid[16];
    char volume_name[16];
    char last_mounted[64];
    uint32_t algorithm_usage_bitmap;
    uint8_t prealloc_blocks;
    uint8_t prealloc_dir_blocks;
    uint16_t reserved_gdt_blocks;
    uint8_t journal_uuid[16];
    uint32_t journal_inum;
    uint32_t journal_dev;
    uint32_t last_orphan;
    uint32_t hash_seed[4];
    uint8_t def_hash_version;
    uint8_t jnl_backup_type;
    uint16_t desc_size;
    uint32_t default_mount_opts;
    uint32_t first_meta_bg;
    uint32_t mkfs_time;
    uint32_t jnl_blocks[17];
    uint32_t blocks_count_hi;
    uint32_t r_blocks_count_hi;
    uint32_t free_blocks_count_hi;
    uint16_t min_extra_isize;
    uint16_t want_extra_isize;
    uint32_t flags;
    // The rest of the 1024 bytes is kept as it was read.
};
inline constexpr uint16_t kStateValid = 0x1;

struct GroupDescriptor {  // 32 bytes: no 64bit feature
    uint32_t block_bitmap;
    uint32_t inode_bitmap;
    uint32_t inode_table;
    uint16_t free_blocks_count;
    uint16_t free_inodes_count;
    uint16_t used_dirs_count;
    uint16_t flags;
    uint32_t exclude_bitmap;
    uint16_t block_bitmap_csum;
    uint16_t inode_bitmap_csum;
    uint16_t itable_unused;
    uint16_t checksum;
};
static_assert(sizeof(GroupDescriptor) == 32);

struct Inode {  // the first 160 bytes of an on-disk inode (s_inode_size is 256)
    uint16_t mode;
    uint16_t uid;
    uint32_t size_lo;
    uint32_t atime;
    uint32_t ctime;
    uint32_t mtime;
    uint32_t dtime;
    uint16_t gid;
    uint16_t links_count;
    uint32_t blocks_lo;  // 512-byte units
    uint32_t flags;
    uint32_t osd1;
    uint8_t block[60];  // the extent tree's root, or a fast symlink's target
    uint32_t generation;
    uint32_t file_acl_lo;
    uint32_t size_high;
    uint32_t obso_faddr;
    uint16_t blocks_high;
    uint16_t file_acl_high;
    uint16_t uid_high;  // osd2's high halves of the owner (Linux's l_i_uid_high, l_i_gid_high)
    uint16_t gid_high;
    uint16_t checksum_lo;
    uint16_t reserved;
    uint16_t extra_isize;
    uint16_t checksum_hi;
    uint32_t ctime_extra;
    uint32_t mtime_extra;
    uint32_t atime_extra;
    uint32_t crtime;
    uint32_t crtime_extra;
    uint32_t version_hi;
    uint32_t projid;
};
static_assert(sizeof(Inode) == 160);

// An inode's owner: 32-bit ids, split into i_uid/i_gid and their high halves in osd2.
inline uint32_t inode_uid(const Inode& inode) { return (static_cast<uint32_t>(inode.uid_high) << 16) | inode.uid; }
inline uint32_t inode_gid(const Inode& inode) { return (static_cast<uint32_t>(inode.gid_high) << 16) | inode.gid; }
inline void set_inode_owner(Inode& inode, uint32_t uid, uint32_t gid) {
    inode.uid = static_cast<uint16_t>(uid);
    inode.uid_high = static_cast<uint16_t>(uid >> 16);
    inode.gid = static_cast<uint16_t>(gid);
    inode.gid_high = static_cast<uint16_t>(gid >> 16);
}
inline constexpr uint32_t kInodeFlagExtents = 0x80000;
inline constexpr uint32_t kInodeFlagIndex = 0x1000;  // an htree directory: not supported
inline constexpr uint32_t kInodeFlagInlineData = 0x10000000;

// The extent tree (in i_block, then in blocks of its own).
inline constexpr uint16_t kExtentMagic = 0xf30a;
struct ExtentHeader {
    uint16_t magic;
    uint16_t entries;
    uint16_t max;
    uint16_t depth;
    uint32_t generation;
};
struct Extent {  // a leaf's entry: `len` blocks from `block` (the file's) at `start` (the disk's)
    uint32_t block;
    uint16_t len;  // > 32768: an unwritten extent (not supported)
    uint16_t start_hi;
    uint32_t start_lo;
};
struct ExtentIndex {  // an inner node's entry: the subtree for file blocks from `block` on
    uint32_t block;
    uint32_t leaf_lo;
    uint16_t leaf_hi;
    uint16_t unused;
};
static_assert(sizeof(ExtentHeader) == 12 && sizeof(Extent) == 12 && sizeof(ExtentIndex) == 12);
inline constexpr uint16_t kMaxInitializedExtent = 32768;

// A directory entry (filetype feature): rec_len covers padding to the next.
struct DirEntryHeader {
    uint32_t inode;
    uint16_t rec_len;
    uint8_t name_len;
    uint8_t file_type;
};
inline constexpr uint8_t kFileTypeRegular = 1, kFileTypeDirectory = 2, kFileTypeCharDevice = 3, kFileTypeFifo = 5,
                         kFileTypeSocket = 6, kFileTypeSymlink = 7;

// jbd2 (big-endian).
inline constexpr uint32_t kJournalMagic = 0xc03b3998;
inline constexpr uint32_t kJournalDescriptor = 1, kJournalCommit = 2, kJournalSuperblockV2 = 4, kJournalRevoke = 5;
struct JournalHeader {
    uint32_t magic;
    uint32_t blocktype;
    uint32_t sequence;
};
struct JournalSuperblock {
    JournalHeader header;
    uint32_t blocksize;
    uint32_t maxlen;
    uint32_t first;
    uint32_t sequence;
    uint32_t start;  // 0: the journal is empty
    uint32_t errno_;
    uint32_t feature_compat;
    uint32_t feature_incompat;
    uint32_t feature_ro_compat;
    uint8_t uuid[16];
    // The rest is kept as it was read.
};
// Tags as written without the 64bit and checksum features: 8 bytes, then the UUID's 16 unless
// kTagSameUuid.
inline constexpr uint16_t kTagEscape = 1, kTagSameUuid = 2, kTagDeleted = 4, kTagLast = 8;
inline constexpr uint32_t kJournalIncompatRevoke = 0x1;
inline constexpr uint32_t kJournalIncompat64bit = 0x2;
inline constexpr uint32_t kJournalIncompatAsyncCommit = 0x4;
inline constexpr uint32_t kJournalIncompatCsumV2 = 0x8;
inline constexpr uint32_t kJournalIncompatCsumV3 = 0x10;
inline constexpr uint32_t kJournalIncompatFastCommit = 0x20;

inline uint32_t from_be32(uint32_t v) { return __builtin_bswap32(v); }
inline uint32_t to_be32(uint32_t v) { return __builtin_bswap32(v); }
inline uint16_t from_be16(uint16_t v) { return __builtin_bswap16(v); }
inline uint16_t to_be16(uint16_t v) { return __builtin_bswap16(v); }

}  // namespace kiln::fs::ext4
