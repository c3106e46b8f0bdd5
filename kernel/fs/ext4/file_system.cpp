#include "fs/ext4/file_system.h"

#include <stddef.h>

#include "core/errno.h"
#include "fs/ext4/extent_tree.h"
#include "fs/ext4/node.h"
#include "lib/string.h"
#include "time/clock.h"

namespace kiln::fs::ext4 {

static_assert(offsetof(Superblock, desc_size) == 0xfe);
static_assert(offsetof(Superblock, jnl_blocks) == 0x10c);
static_assert(offsetof(Superblock, min_extra_isize) == 0x15c);

namespace {

bool test_bit(const uint8_t* bitmap, uint32_t bit) { return bitmap[bit / 8] & (1u << (bit % 8)); }
void set_bit(uint8_t* bitmap, uint32_t bit) {
    bitmap[bit / 8] = static_cast<uint8_t>(bitmap[bit / 8] | (1u << (bit % 8)));
}
void clear_bit(uint8_t* bitmap, uint32_t bit) {
    bitmap[bit / 8] = static_cast<uint8_t>(bitmap[bit / 8] & ~(1u << (bit % 8)));
}

}  // namespace

FileSystem::FileSystem(block::Device& device, uint32_t block_size, bool read_only)
    : cache_(device, block_size), journal_(cache_), read_only_(read_only) {}

FileSystem::~FileSystem() = default;

int64_t FileSystem::mount(block::Device& device, bool read_only, FileSystem*& out, const char*& error) {
    Superblock sb;
    uint8_t raw[block::kSectorSize * 2];
    error = "the superblock cannot be read";
    if (device.sector_count() < 16 || device.read(kSuperblockOffset / block::kSectorSize, raw, sizeof(raw)) != 0)
        return -EIO;
    memcpy(&sb, raw, sizeof(sb));
    error = "not an ext4 file system (no superblock magic)";
    if (sb.magic != kMagic) return -EINVAL;
    error = "the block size is not 1, 2 or 4 KiB";
    if (sb.log_block_size > 2) return -EINVAL;
    auto* fs = new FileSystem(device, 1024u << sb.log_block_size, read_only || device.read_only());
    if (!fs) return -ENOMEM;
    if (int64_t r = fs->load(error); r < 0) {
        delete fs;
        return r;
    }
    out = fs;
    return 0;
}

int64_t FileSystem::load(const char*& error) {
    const uint32_t bs = cache_.block_size();
    super_block_ = kSuperblockOffset / bs;
    super_offset_ = kSuperblockOffset % bs;
    error = "the superblock cannot be read";
    if (!cache_.get(super_block_)) return -EIO;
    const Superblock& sb = super();
    error =
        "the file system has incompatible features this kernel does not support (64bit, meta_bg, "
        "inline_data, encryption, casefold...); make it with the features docs/volumes.md lists";
    if (sb.feature_incompat & ~kIncompatSupported) return -EINVAL;
    if (!read_only_ && (sb.feature_ro_compat & ~kRoCompatSupported)) {
        error =
            "the file system has features this kernel can only read (metadata_csum, huge_file...); "
            "make it with the features docs/volumes.md lists";
        return -EROFS;
    }
    error = "the file system has no journal";
    if (!(sb.feature_compat & kCompatHasJournal) || sb.journal_inum != kJournalInode || sb.journal_dev != 0)
        return -EINVAL;
    error = "the superblock's geometry is damaged";
    if (sb.blocks_per_group == 0 || sb.inodes_per_group == 0 || sb.inode_size < 128 || sb.rev_level < 1 ||
        (sb.inode_size & (sb.inode_size - 1)) || sb.inode_size > bs || sb.blocks_per_group > bs * 8 ||
        sb.inodes_per_group > bs * 8 || sb.first_data_block != (bs == 1024 ? 1u : 0u))
        return -EINVAL;
    blocks_per_group_ = sb.blocks_per_group;
    inodes_per_group_ = sb.inodes_per_group;
    inode_size_ = sb.inode_size;
    first_data_block_ = sb.first_data_block;
    gdt_block_ = first_data_block_ + 1;
    const uint64_t blocks = blocks_count();
    if (blocks > cache_.device().sector_count() / (bs / block::kSectorSize)) {
        error = "the file system is larger than its device";
        return -EINVAL;
    }
    group_count_ = static_cast<uint32_t>((blocks - first_data_block_ + blocks_per_group_ - 1) / blocks_per_group_);
    if (static_cast<uint64_t>(group_count_) * inodes_per_group_ != sb.inodes_count) return -EINVAL;
    for (uint32_t g = 0; g < group_count_; ++g) {
        error = "a group descriptor cannot be read";
        if (!cache_.get(gdt_block_ + g * sizeof(GroupDescriptor) / bs)) return -EIO;
        const GroupDescriptor& d = group(g);
        error = "a group descriptor points outside the file system";
        if (d.block_bitmap >= blocks || d.inode_bitmap >= blocks || d.inode_table >= blocks) return -EINVAL;
    }
    Inode journal_inode;
    error = "the journal inode cannot be read";
    if (int64_t r = load_inode(kJournalInode, journal_inode); r < 0) return r;
    uint32_t replayed = 0;
    if (int64_t r = journal_.open(journal_inode, replayed, error); r < 0) return r;
    if (replayed > 0) {
        // The replay rewrote metadata behind the cache's back.
        for (uint32_t g = 0; g < group_count_; ++g) cache_.forget(gdt_block_ + g * sizeof(GroupDescriptor) / bs);
        cache_.forget(super_block_);
        if (!cache_.get(super_block_)) return -EIO;
    }
    if (read_only_) return 0;
    error = "the journal cannot be started";
    super().feature_incompat |= kIncompatRecover;
    super().mnt_count = static_cast<uint16_t>(super().mnt_count + 1);
    super().mtime = now();
    if (int64_t r = write_super_now(); r < 0) return r;
    return journal_.start();
}

// Written in place, outside the journal, as ext4's own mount does: the superblock's needs_recovery
// flag must be on the device before the first transaction.
int64_t FileSystem::write_super_now() {
    Buffer* b = cache_.get(super_block_);
    if (!b) return -EIO;
    if (cache_.write_blocks(super_block_, b->data, 1) < 0) return -EIO;
    return cache_.device().flush() < 0 ? -EIO : 0;
}

Superblock& FileSystem::super() {
    return *reinterpret_cast<Superblock*>(cache_.get(super_block_)->data + super_offset_);
}

void FileSystem::mark_super_dirty() { cache_.mark_dirty(*cache_.get(super_block_)); }

uint64_t FileSystem::blocks_count() const {
    auto& self = const_cast<FileSystem&>(*this);
    const Superblock& sb = self.super();
    return sb.blocks_count_lo;  // no 64bit feature: the high half is not used
}

GroupDescriptor& FileSystem::group(uint32_t index) {
    const uint32_t bs = cache_.block_size();
    const uint64_t offset = static_cast<uint64_t>(index) * sizeof(GroupDescriptor);
    Buffer* b = cache_.get(gdt_block_ + offset / bs);
    return *reinterpret_cast<GroupDescriptor*>(b->data + offset % bs);
}

void FileSystem::mark_group_dirty(uint32_t index) {
    cache_.mark_dirty(
        *cache_.get(gdt_block_ + static_cast<uint64_t>(index) * sizeof(GroupDescriptor) / cache_.block_size()));
}

uint32_t FileSystem::now() const { return static_cast<uint32_t>(time::realtime_ns() / 1000000000); }

int64_t FileSystem::begin_operation() {
    if (read_only_ || clean_) return -EROFS;
    if (cache_.dirty().size() > journal_.capacity() / 2)
        if (int64_t r = sync(); r < 0) return r;
    cache_.trim();
    return 0;
}

int64_t FileSystem::sync() {
    if (read_only_ || clean_) return 0;
    super().wtime = now();
    if (!cache_.dirty().empty()) mark_super_dirty();
    if (int64_t r = journal_.commit(); r < 0) return r;
    freed_.clear();
    return 0;
}

int64_t FileSystem::unmount() {
    if (read_only_ || clean_) return 0;
    if (int64_t r = sync(); r < 0) return r;
    if (int64_t r = journal_.stop(); r < 0) return r;
    super().feature_incompat &= ~kIncompatRecover;
    super().state |= kStateValid;
    if (int64_t r = write_super_now(); r < 0) return r;
    clean_ = true;
    return 0;
}

int64_t FileSystem::load_inode(uint32_t ino, Inode& out) {
    if (ino == 0 || ino > super().inodes_count) return -EUCLEAN;
    const uint32_t g = (ino - 1) / inodes_per_group_;
    const uint64_t offset = static_cast<uint64_t>((ino - 1) % inodes_per_group_) * inode_size_;
    const uint32_t bs = cache_.block_size();
    Buffer* b = cache_.get(group(g).inode_table + offset / bs);
    if (!b) return -EIO;
    memcpy(&out, b->data + offset % bs, sizeof(Inode));
    return 0;
}

int64_t FileSystem::store_inode(uint32_t ino, const Inode& inode) {
    if (ino == 0 || ino > super().inodes_count) return -EUCLEAN;
    const uint32_t g = (ino - 1) / inodes_per_group_;
    const uint64_t offset = static_cast<uint64_t>((ino - 1) % inodes_per_group_) * inode_size_;
    const uint32_t bs = cache_.block_size();
    Buffer* b = cache_.get(group(g).inode_table + offset / bs);
    if (!b) return -EIO;
    const size_t size = inode_size_ < sizeof(Inode) ? inode_size_ : sizeof(Inode);
    memcpy(b->data + offset % bs, &inode, size);
    cache_.mark_dirty(*b);
    return 0;
}

uint32_t FileSystem::allocate_inode(bool directory) {
    Superblock& sb = super();
    for (uint32_t g = 0; g < group_count_; ++g) {
        GroupDescriptor& d = group(g);
        if (d.free_inodes_count == 0) continue;
        Buffer* bitmap = cache_.get(d.inode_bitmap);
        if (!bitmap) return 0;
        for (uint32_t i = 0; i < inodes_per_group_; ++i) {
            const uint32_t ino = g * inodes_per_group_ + i + 1;
            if (ino < sb.first_ino || test_bit(bitmap->data, i)) continue;
            set_bit(bitmap->data, i);
            cache_.mark_dirty(*bitmap);
            --d.free_inodes_count;
            if (directory) ++d.used_dirs_count;
            mark_group_dirty(g);
            --sb.free_inodes_count;
            mark_super_dirty();
            // A new inode starts as zeros, so nothing of an earlier one (extended attributes in
            // its tail) survives.
            const uint64_t offset = static_cast<uint64_t>(i) * inode_size_;
            Buffer* table = cache_.get(d.inode_table + offset / cache_.block_size());
            if (!table) return 0;
            memset(table->data + offset % cache_.block_size(), 0, inode_size_);
            cache_.mark_dirty(*table);
            return ino;
        }
    }
    return 0;
}

void FileSystem::free_inode(uint32_t ino, bool directory) {
    const uint32_t g = (ino - 1) / inodes_per_group_;
    GroupDescriptor& d = group(g);
    Buffer* bitmap = cache_.get(d.inode_bitmap);
    if (!bitmap) return;
    const uint32_t i = (ino - 1) % inodes_per_group_;
    if (!test_bit(bitmap->data, i)) return;
    clear_bit(bitmap->data, i);
    cache_.mark_dirty(*bitmap);
    ++d.free_inodes_count;
    if (directory && d.used_dirs_count > 0) --d.used_dirs_count;
    mark_group_dirty(g);
    ++super().free_inodes_count;
    mark_super_dirty();
}

bool FileSystem::recently_freed(uint64_t block) const {
    for (const Range& r : freed_)
        if (block >= r.start && block - r.start < r.count) return true;
    return false;
}

uint64_t FileSystem::allocate_blocks(uint64_t goal, uint32_t count, uint32_t& got) {
    got = 0;
    const uint64_t blocks = blocks_count();
    if (count == 0 || super().free_blocks_count_lo == 0) return 0;
    if (goal < first_data_block_ || goal >= blocks) goal = first_data_block_;
    const uint32_t first_group = static_cast<uint32_t>((goal - first_data_block_) / blocks_per_group_);
    for (uint32_t n = 0; n <= group_count_; ++n) {
        const uint32_t g = (first_group + n) % group_count_;
        GroupDescriptor& d = group(g);
        if (d.free_blocks_count == 0) continue;
        Buffer* bitmap = cache_.get(d.block_bitmap);
        if (!bitmap) return 0;
        const uint64_t group_start = first_data_block_ + static_cast<uint64_t>(g) * blocks_per_group_;
        uint32_t in_group = blocks_per_group_;
        if (group_start + in_group > blocks) in_group = static_cast<uint32_t>(blocks - group_start);
        uint32_t from = n == 0 ? static_cast<uint32_t>(goal - group_start) : 0;
        for (uint32_t pass = 0; pass < 2; ++pass, from = 0) {  // from the goal on, then from the start
            for (uint32_t i = from; i < in_group; ++i) {
                if ((i & 7) == 0 && i + 8 <= in_group && bitmap->data[i / 8] == 0xff) {
                    i += 7;
                    continue;
                }
                if (test_bit(bitmap->data, i) || recently_freed(group_start + i)) continue;
                uint32_t run = 0;
                while (run < count && i + run < in_group && run < d.free_blocks_count &&
                       !test_bit(bitmap->data, i + run) && !recently_freed(group_start + i + run)) {
                    set_bit(bitmap->data, i + run);
                    ++run;
                }
                cache_.mark_dirty(*bitmap);
                d.free_blocks_count = static_cast<uint16_t>(d.free_blocks_count - run);
                mark_group_dirty(g);
                super().free_blocks_count_lo -= run;
                mark_super_dirty();
                got = run;
                return group_start + i;
            }
        }
    }
    return 0;
}

void FileSystem::free_blocks(uint64_t start, uint32_t count) {
    const uint64_t blocks = blocks_count();
    if (count == 0 || start < first_data_block_ || start + count > blocks) return;  // never touch what is not ours
    (void)freed_.push_back({start, count});
    for (uint32_t k = 0; k < count; ++k) {
        const uint64_t block = start + k;
        cache_.forget(block);
        const uint32_t g = static_cast<uint32_t>((block - first_data_block_) / blocks_per_group_);
        const uint32_t i = static_cast<uint32_t>((block - first_data_block_) % blocks_per_group_);
        GroupDescriptor& d = group(g);
        Buffer* bitmap = cache_.get(d.block_bitmap);
        if (!bitmap || !test_bit(bitmap->data, i)) continue;
        clear_bit(bitmap->data, i);
        cache_.mark_dirty(*bitmap);
        ++d.free_blocks_count;
        mark_group_dirty(g);
        ++super().free_blocks_count_lo;
    }
    mark_super_dirty();
}

RefPtr<Ext4Node> FileSystem::node(uint32_t ino) {
    for (Ext4Node* n : live_)
        if (n->inode_number() == ino) return RefPtr<Ext4Node>(n);
    Inode inode;
    if (load_inode(ino, inode) < 0 || inode.links_count == 0) return {};
    RefPtr<Ext4Node> n = Ext4Node::make(*this, ino, inode);
    if (n && !live_.push_back(n.get())) return {};
    return n;
}

void FileSystem::node_destroyed(Ext4Node* node) {
    for (size_t i = 0; i < live_.size(); ++i) {
        if (live_[i] == node) {
            live_[i] = live_.back();
            live_.pop_back();
            return;
        }
    }
}

RefPtr<Node> FileSystem::root() { return node(kRootInode); }

}  // namespace kiln::fs::ext4
