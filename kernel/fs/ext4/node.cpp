#include "fs/ext4/node.h"

#include "core/errno.h"
#include "fs/ext4/extent_tree.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "time/clock.h"

namespace kiln::fs::ext4 {
namespace {

// File data moves through a bounce buffer of this many blocks: one device request each.
constexpr uint32_t kBounceBlocks = 16;

Type type_of(uint16_t mode) {
    switch (mode & 0170000) {
        case 0040000: return Type::kDirectory;
        case 0120000: return Type::kSymlink;
        case 0020000: return Type::kCharDevice;
        case 0010000: return Type::kFifo;
        case 0140000: return Type::kSocket;
        default: return Type::kRegular;
    }
}

class Bounce {
  public:
    explicit Bounce(size_t size) : data_(static_cast<uint8_t*>(heap::allocate(size))) {}
    ~Bounce() { heap::free(data_); }
    Bounce(const Bounce&) = delete;
    Bounce& operator=(const Bounce&) = delete;
    uint8_t* get() const { return data_; }

  private:
    uint8_t* data_;
};

}  // namespace

uint8_t file_type_of(Type type) {
    switch (type) {
        case Type::kDirectory: return kFileTypeDirectory;
        case Type::kSymlink: return kFileTypeSymlink;
        case Type::kCharDevice: return kFileTypeCharDevice;
        case Type::kFifo: return kFileTypeFifo;
        case Type::kSocket: return kFileTypeSocket;
        default: return kFileTypeRegular;
    }
}

RefPtr<Ext4Node> Ext4Node::make(FileSystem& fs, uint32_t ino, const Inode& inode) {
    RefPtr<Ext4Node> node(new Ext4Node(fs, ino, inode, type_of(inode.mode)));
    if (node && node->type() == Type::kSymlink && node->read_symlink() < 0) return {};
    return node;
}

Ext4Node::Ext4Node(FileSystem& fs, uint32_t ino, const Inode& inode, Type type)
    : Node(type, inode.mode & 07777), fs_(fs), ino_(ino), inode_(inode) {
    mtime_ns = static_cast<uint64_t>(inode.mtime) * 1000000000;
    Node::set_owner({inode_uid(inode), inode_gid(inode)});
}

Ext4Node::~Ext4Node() {
    fs_.node_destroyed(this);
    if (inode_.links_count == 0) release();
}

// The last name is gone and the last user too: blocks and inode back to the free pool.
void Ext4Node::release() {
    if (fs_.read_only()) return;
    if (inode_.flags & kInodeFlagExtents) (void)remove_extents_from(fs_, inode_, 0);
    const bool directory = type() == Type::kDirectory;
    memset(&inode_, 0, sizeof(inode_));
    inode_.dtime = fs_.now();
    (void)store();
    fs_.free_inode(ino_, directory);
}

uint64_t Ext4Node::size() const { return (static_cast<uint64_t>(inode_.size_high) << 32) | inode_.size_lo; }

void Ext4Node::set_size(uint64_t size) {
    inode_.size_lo = static_cast<uint32_t>(size);
    inode_.size_high = static_cast<uint32_t>(size >> 32);
}

int64_t Ext4Node::store() {
    inode_.mode = static_cast<uint16_t>(mode());
    set_inode_owner(inode_, uid(), gid());
    inode_.mtime = static_cast<uint32_t>(mtime_ns / 1000000000);
    inode_.ctime = fs_.now();
    return fs_.store_inode(ino_, inode_);
}

void Ext4Node::set_permissions(uint32_t permissions) {
    Node::set_permissions(permissions);
    if (fs_.begin_operation() == 0) (void)store();
}

// A change of owner is an inode update like a chmod: journaled with the next commit.
int64_t Ext4Node::set_owner(Owner owner) {
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    Node::set_owner(owner);
    return store();
}

int64_t Ext4Node::read_symlink() {
    const uint64_t length = size();
    if (length >= 4096) return -EUCLEAN;
    char text[4096];
    if (!(inode_.flags & kInodeFlagExtents) && length < sizeof(inode_.block)) {
        memcpy(text, inode_.block, length);  // a fast symlink: the target in i_block
    } else {
        const int64_t r = read(0, IoBuffer::kernel(text), length);
        if (r != static_cast<int64_t>(length)) return r < 0 ? r : -EIO;
    }
    target_ = String(StringView(text, length));
    return target_.size() == length ? 0 : -ENOMEM;
}

int64_t Ext4Node::read(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (type() == Type::kDirectory) return -EISDIR;
    if (!(inode_.flags & kInodeFlagExtents)) return size == 0 ? 0 : -EOPNOTSUPP;  // block maps: not supported
    const uint64_t end = this->size();
    if (offset >= end) return 0;
    if (size > end - offset) size = static_cast<size_t>(end - offset);
    const uint32_t bs = fs_.block_size();
    Bounce bounce(static_cast<size_t>(kBounceBlocks) * bs);
    if (!bounce.get()) return -ENOMEM;
    size_t done = 0;
    while (done < size) {
        const uint64_t at = offset + done;
        const uint32_t logical = static_cast<uint32_t>(at / bs);
        const uint32_t into = static_cast<uint32_t>(at % bs);
        Mapping m;
        if (int64_t r = map_block(fs_.cache(), inode_, logical, m); r < 0) return done ? static_cast<int64_t>(done) : r;
        uint32_t blocks = m.length < kBounceBlocks ? m.length : kBounceBlocks;
        const uint64_t wanted_blocks = (into + (size - done) + bs - 1) / bs;
        if (blocks > wanted_blocks) blocks = static_cast<uint32_t>(wanted_blocks);
        size_t n = static_cast<size_t>(blocks) * bs - into;
        if (n > size - done) n = size - done;
        if (m.physical == 0 || m.unwritten) {
            memset(bounce.get(), 0, static_cast<size_t>(blocks) * bs);
        } else if (fs_.cache().read_blocks(m.physical, bounce.get(), blocks) < 0) {
            return done ? static_cast<int64_t>(done) : -EIO;
        }
        if (buffer.copy_out(done, bounce.get() + into, n) != 0) return done ? static_cast<int64_t>(done) : -EFAULT;
        done += n;
    }
    return static_cast<int64_t>(done);
}

int64_t Ext4Node::allocate(uint32_t logical, uint32_t count, uint64_t goal, uint64_t& first, uint32_t& got,
                           bool may_commit) {
    first = fs_.allocate_blocks(goal, count, got);
    if (first == 0 && may_commit && fs_.has_pending_frees()) {
        // The only free blocks were freed since the last commit (a file rewritten on a full
        // volume): commit, as ext4 does before it reports ENOSPC, and they are free for good.
        // The inode is stored first, so the commit holds what this operation did so far.
        if (int64_t r = store(); r < 0) return r;
        if (int64_t r = fs_.sync(); r < 0) return r;
        first = fs_.allocate_blocks(goal, count, got);
    }
    if (first == 0) return -ENOSPC;
    if (int64_t r = add_extent(fs_, inode_, logical, first, got); r < 0) {
        fs_.free_blocks(first, got);
        return r;
    }
    const uint64_t sectors = ((static_cast<uint64_t>(inode_.blocks_high) << 32) | inode_.blocks_lo) +
                             static_cast<uint64_t>(got) * (fs_.block_size() / 512);
    inode_.blocks_lo = static_cast<uint32_t>(sectors);
    inode_.blocks_high = static_cast<uint16_t>(sectors >> 32);
    return 0;
}

int64_t Ext4Node::write(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (type() == Type::kDirectory) return -EISDIR;
    if (!(inode_.flags & kInodeFlagExtents)) return -EOPNOTSUPP;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    const uint32_t bs = fs_.block_size();
    if (offset + size > (static_cast<uint64_t>(UINT32_MAX) * bs) || offset + size < offset) return -EFBIG;
    Bounce bounce(static_cast<size_t>(kBounceBlocks) * bs);
    if (!bounce.get()) return -ENOMEM;
    size_t done = 0;
    int64_t error = 0;
    uint64_t goal = 0;
    while (done < size) {
        const uint64_t at = offset + done;
        const uint32_t logical = static_cast<uint32_t>(at / bs);
        const uint32_t into = static_cast<uint32_t>(at % bs);
        const uint32_t wanted = static_cast<uint32_t>((into + (size - done) + bs - 1) / bs);
        Mapping m;
        if ((error = map_block(fs_.cache(), inode_, logical, m)) < 0) break;
        if (m.unwritten) {
            error = -EOPNOTSUPP;
            break;
        }
        uint32_t blocks = m.length < wanted ? m.length : wanted;
        if (blocks > kBounceBlocks) blocks = kBounceBlocks;
        const bool fresh = m.physical == 0;
        if (fresh) {
            if (goal == 0 && logical > 0) {
                Mapping before;
                if (map_block(fs_.cache(), inode_, logical - 1, before) == 0 && before.physical)
                    goal = before.physical + 1;
            }
            if ((error = allocate(logical, blocks, goal, m.physical, blocks, true)) < 0) break;
        }
        size_t n = static_cast<size_t>(blocks) * bs - into;
        if (n > size - done) n = size - done;
        const bool partial = into != 0 || (into + n) % bs != 0;
        if (partial) {
            if (fresh) {
                memset(bounce.get(), 0, static_cast<size_t>(blocks) * bs);
            } else if (fs_.cache().read_blocks(m.physical, bounce.get(), blocks) < 0) {
                error = -EIO;
                break;
            }
        }
        if (buffer.copy_in(done, bounce.get() + into, n) != 0) {
            error = -EFAULT;
            if (!fresh) break;
            memset(bounce.get() + into, 0, n);  // a fresh block is mapped now: it must not hold old data
        }
        if (fs_.cache().write_blocks(m.physical, bounce.get(), blocks) < 0) {
            error = -EIO;
            break;
        }
        if (error < 0) break;
        goal = m.physical + blocks;
        done += n;
        if (offset + done > this->size()) set_size(offset + done);
    }
    if (done > 0 || error == 0) {
        mtime_ns = time::realtime_ns();
        if (int64_t r = store(); r < 0) return r;
    }
    return done > 0 ? static_cast<int64_t>(done) : error;
}

int64_t Ext4Node::truncate(uint64_t length) {
    if (type() == Type::kDirectory) return -EISDIR;
    if (!(inode_.flags & kInodeFlagExtents)) return -EOPNOTSUPP;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    const uint32_t bs = fs_.block_size();
    if (length > static_cast<uint64_t>(UINT32_MAX) * bs) return -EFBIG;
    if (length < size()) {
        const uint32_t keep = static_cast<uint32_t>((length + bs - 1) / bs);
        if (int64_t r = remove_extents_from(fs_, inode_, keep); r < 0) return r;
        // The rest of the last block reads as zeros if the file grows again.
        Mapping m;
        if (length % bs && map_block(fs_.cache(), inode_, keep - 1, m) == 0 && m.physical && !m.unwritten) {
            Bounce bounce(bs);
            if (!bounce.get()) return -ENOMEM;
            if (fs_.cache().read_blocks(m.physical, bounce.get(), 1) < 0) return -EIO;
            memset(bounce.get() + length % bs, 0, bs - length % bs);
            if (fs_.cache().write_blocks(m.physical, bounce.get(), 1) < 0) return -EIO;
        }
    }
    set_size(length);
    mtime_ns = time::realtime_ns();
    return store();
}

}  // namespace kiln::fs::ext4
