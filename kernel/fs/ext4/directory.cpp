// Ext4Node's directory operations: linear directories (no dir_index), entries with file types.
// A directory block is metadata: read and changed through the block cache, so the journal
// carries every change.
#include "core/errno.h"
#include "fs/ext4/extent_tree.h"
#include "fs/ext4/node.h"
#include "lib/string.h"
#include "time/clock.h"

namespace kiln::fs::ext4 {
namespace {

constexpr uint32_t kEntryHeader = sizeof(DirEntryHeader);
// Linear directories (no dir_index) are scanned whole for every lookup; one past this size is a
// damaged inode rather than a directory anyone could use.
constexpr uint64_t kMaxDirectorySize = 256ull << 20;

uint32_t entry_size(uint32_t name_length) { return (kEntryHeader + name_length + 3) & ~3u; }

DirEntryHeader* header_at(uint8_t* block, uint32_t offset) { return reinterpret_cast<DirEntryHeader*>(block + offset); }

bool is_dot(StringView name) { return name == "." || name == ".."; }

}  // namespace

// visit(slot, header, name) for every entry of the directory, in order; false stops. Returns 0,
// or a negative errno for an unreadable or damaged block.
template <typename F>
int64_t Ext4Node::for_each_entry(F visit) const {
    const uint32_t bs = fs_.block_size();
    if (size() > kMaxDirectorySize) return -EUCLEAN;
    const uint64_t blocks = size() / bs;
    for (uint64_t logical = 0; logical < blocks; ++logical) {
        Mapping m;
        if (int64_t r = map_block(fs_.cache(), inode_, static_cast<uint32_t>(logical), m); r < 0) return r;
        if (m.physical == 0 || m.unwritten) {  // a hole: none of its blocks holds entries
            logical += m.length - 1;
            continue;
        }
        Buffer* b = fs_.cache().get(m.physical);
        if (!b) return -EIO;
        uint32_t previous = UINT32_MAX;
        for (uint32_t offset = 0; offset < bs;) {
            DirEntryHeader* e = header_at(b->data, offset);
            if (offset + kEntryHeader > bs || e->rec_len < kEntryHeader || e->rec_len % 4 || offset + e->rec_len > bs ||
                e->rec_len < kEntryHeader + e->name_len)
                return -EUCLEAN;
            Slot slot{m.physical, offset, previous, e->inode, e->file_type};
            if (!visit(slot, *e, StringView(reinterpret_cast<const char*>(e + 1), e->name_len))) return 0;
            previous = offset;
            offset += e->rec_len;
        }
    }
    return 0;
}

bool Ext4Node::find(StringView name, Slot& out) const {
    bool found = false;
    (void)for_each_entry([&](const Slot& slot, const DirEntryHeader& e, StringView entry_name) {
        if (e.inode == 0 || entry_name != name) return true;
        out = slot;
        found = true;
        return false;
    });
    return found;
}

RefPtr<Node> Ext4Node::lookup(StringView name) {
    if (type() != Type::kDirectory) return {};
    Slot slot;
    if (!find(name, slot)) return {};
    RefPtr<Ext4Node> child = fs_.node(slot.ino);
    if (!child || child->type() != Type::kDirectory || is_dot(name)) return child;
    // A damaged volume may name a directory inside itself: ".." never makes a loop in memory.
    for (Node* up = this; up; up = up->parent.get())
        if (up == child.get()) return child;
    child->parent = RefPtr<Node>(this);
    return child;
}

bool Ext4Node::entry(size_t index, DirEntry& out) {
    size_t seen = 0;
    bool found = false;
    (void)for_each_entry([&](const Slot& slot, const DirEntryHeader& e, StringView name) {
        if (e.inode == 0 || is_dot(name)) return true;
        if (seen++ != index) return true;
        entry_name_ = String(name);
        out.name = entry_name_.view();
        out.ino = slot.ino;
        out.type = slot.file_type == kFileTypeDirectory ? Type::kDirectory
                   : slot.file_type == kFileTypeSymlink ? Type::kSymlink
                                                        : Type::kRegular;
        found = true;
        return false;
    });
    return found;
}

size_t Ext4Node::entry_count() const {
    size_t count = 0;
    (void)for_each_entry([&](const Slot&, const DirEntryHeader& e, StringView name) {
        if (e.inode != 0 && !is_dot(name)) ++count;
        return true;
    });
    return count;
}

// Into the first gap large enough (a deleted entry's, or the slack after an entry), else into a
// block added to the directory.
int64_t Ext4Node::insert(StringView name, uint32_t ino, uint8_t file_type) {
    if (name.empty() || name.size() > 255) return -ENAMETOOLONG;
    const uint32_t needed = entry_size(static_cast<uint32_t>(name.size()));
    const uint32_t bs = fs_.block_size();
    Slot gap;
    bool have_gap = false;
    if (int64_t r = for_each_entry([&](const Slot& slot, const DirEntryHeader& e, StringView) {
            const uint32_t used = e.inode ? entry_size(e.name_len) : 0;
            if (e.rec_len - used < needed) return true;
            gap = slot;
            have_gap = true;
            return false;
        });
        r < 0)
        return r;
    Buffer* b = nullptr;
    uint32_t offset = 0;
    uint32_t rec_len = bs;
    if (have_gap) {
        b = fs_.cache().get(gap.block);
        if (!b) return -EIO;
        DirEntryHeader* e = header_at(b->data, gap.offset);
        if (e->inode == 0) {
            offset = gap.offset;
            rec_len = e->rec_len;
        } else {
            const uint32_t used = entry_size(e->name_len);
            offset = gap.offset + used;
            rec_len = e->rec_len - used;
            e->rec_len = static_cast<uint16_t>(used);
        }
    } else {
        const uint32_t logical = static_cast<uint32_t>(size() / bs);
        uint64_t physical;
        uint32_t got;
        Mapping last;
        const uint64_t goal =
            logical > 0 && map_block(fs_.cache(), inode_, logical - 1, last) == 0 ? last.physical + 1 : 0;
        if (int64_t r = allocate(logical, 1, goal, physical, got); r < 0) return r;
        b = fs_.cache().get_zeroed(physical);
        if (!b) return -ENOMEM;
        set_size(size() + bs);
    }
    DirEntryHeader* e = header_at(b->data, offset);
    *e = DirEntryHeader{ino, static_cast<uint16_t>(rec_len), static_cast<uint8_t>(name.size()), file_type};
    memcpy(e + 1, name.data(), name.size());
    fs_.cache().mark_dirty(*b);
    mtime_ns = time::realtime_ns();
    return store();
}

// An entry goes by joining the one before it in its block; the first of a block is marked
// unused instead.
int64_t Ext4Node::erase(const Slot& slot) {
    Buffer* b = fs_.cache().get(slot.block);
    if (!b) return -EIO;
    DirEntryHeader* e = header_at(b->data, slot.offset);
    if (slot.previous == UINT32_MAX) {
        e->inode = 0;
    } else {
        DirEntryHeader* before = header_at(b->data, slot.previous);
        before->rec_len = static_cast<uint16_t>(before->rec_len + e->rec_len);
    }
    fs_.cache().mark_dirty(*b);
    mtime_ns = time::realtime_ns();
    return store();
}

void Ext4Node::adjust_links(int delta) { inode_.links_count = static_cast<uint16_t>(inode_.links_count + delta); }

int64_t Ext4Node::set_dotdot(uint32_t parent_ino) {
    Slot slot;
    if (!find("..", slot)) return -EUCLEAN;
    Buffer* b = fs_.cache().get(slot.block);
    if (!b) return -EIO;
    header_at(b->data, slot.offset)->inode = parent_ino;
    fs_.cache().mark_dirty(*b);
    return 0;
}

int64_t Ext4Node::make_directory_block(uint32_t parent_ino) {
    const uint32_t bs = fs_.block_size();
    uint64_t physical;
    uint32_t got;
    if (int64_t r = allocate(0, 1, 0, physical, got); r < 0) return r;
    Buffer* b = fs_.cache().get_zeroed(physical);
    if (!b) return -ENOMEM;
    DirEntryHeader* dot = header_at(b->data, 0);
    *dot = DirEntryHeader{ino_, static_cast<uint16_t>(entry_size(1)), 1, kFileTypeDirectory};
    memcpy(dot + 1, ".", 1);
    DirEntryHeader* dotdot = header_at(b->data, entry_size(1));
    *dotdot = DirEntryHeader{parent_ino, static_cast<uint16_t>(bs - entry_size(1)), 2, kFileTypeDirectory};
    memcpy(dotdot + 1, "..", 2);
    fs_.cache().mark_dirty(*b);
    set_size(bs);
    return 0;
}

int64_t Ext4Node::create(StringView name, Type type, uint32_t permissions, StringView link_target, Owner owner,
                         RefPtr<Node>& out) {
    if (this->type() != Type::kDirectory) return -ENOTDIR;
    if (type != Type::kRegular && type != Type::kDirectory && type != Type::kSymlink) return -EPERM;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    if (inode_.links_count == 0) return -ENOENT;  // a removed directory
    Slot existing;
    if (find(name, existing)) return -EEXIST;
    if (name.size() > 255) return -ENAMETOOLONG;
    if (link_target.size() >= 4096) return -ENAMETOOLONG;
    const bool directory = type == Type::kDirectory;
    const uint32_t ino = fs_.allocate_inode(directory);
    if (ino == 0) return -ENOSPC;
    Inode inode{};
    inode.mode = static_cast<uint16_t>(static_cast<uint32_t>(type) | (permissions & 07777));
    inode.links_count = directory ? 2 : 1;
    set_inode_owner(inode, owner.uid, owner.gid);
    const uint32_t now = fs_.now();
    inode.atime = inode.ctime = inode.mtime = inode.crtime = now;
    inode.extra_isize = 32;
    const bool fast_symlink = type == Type::kSymlink && link_target.size() < sizeof(inode.block);
    if (fast_symlink) {
        memcpy(inode.block, link_target.data(), link_target.size());
        inode.size_lo = static_cast<uint32_t>(link_target.size());
    } else {
        init_extent_root(inode);
    }
    RefPtr<Ext4Node> node(new Ext4Node(fs_, ino, inode, type));
    if (!node) {
        fs_.free_inode(ino, directory);
        return -ENOMEM;
    }
    node->mtime_ns = static_cast<uint64_t>(now) * 1000000000;
    int64_t r = 0;
    if (directory) {
        r = node->make_directory_block(ino_);
    } else if (type == Type::kSymlink && !fast_symlink) {
        const int64_t written = node->write(0, IoBuffer::kernel(link_target.data()), link_target.size());
        r = written < 0 ? written : 0;
    }
    if (r == 0) r = node->store();
    if (r == 0) r = insert(name, ino, file_type_of(type));
    if (r < 0) {
        node->inode_.links_count = 0;  // released as the node goes
        return r;
    }
    if (directory) {
        adjust_links(1);  // the new directory's ".."
        node->parent = RefPtr<Node>(this);
    }
    if (type == Type::kSymlink) node->target_ = String(link_target);
    if (int64_t s = store(); s < 0) return s;
    if (!fs_.track(node.get())) return -ENOMEM;
    out = node;
    return 0;
}

// A hard link (never to a directory: the syscall checks).
int64_t Ext4Node::add_entry(StringView name, RefPtr<Node> node) {
    if (type() != Type::kDirectory) return -ENOTDIR;
    if (node->file_system() != &fs_) return -EXDEV;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    Slot existing;
    if (find(name, existing)) return -EEXIST;
    auto* target = static_cast<Ext4Node*>(node.get());
    if (target->inode_.links_count >= 65000) return -EMLINK;
    if (int64_t r = insert(name, target->ino_, file_type_of(target->type())); r < 0) return r;
    target->adjust_links(1);
    return target->store();
}

int64_t Ext4Node::remove_entry(StringView name) {
    if (type() != Type::kDirectory) return -ENOTDIR;
    if (is_dot(name)) return -EINVAL;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    Slot slot;
    if (!find(name, slot)) return -ENOENT;
    RefPtr<Ext4Node> node = fs_.node(slot.ino);
    if (int64_t r = erase(slot); r < 0) return r;
    if (!node) return 0;  // the entry named a free inode: nothing more to undo
    if (node->type() == Type::kDirectory) {
        node->inode_.links_count = 0;  // its name and its "."
        adjust_links(-1);              // its ".."
        if (int64_t r = store(); r < 0) return r;
    } else {
        node->adjust_links(-1);
    }
    return node->store();
}

int64_t Ext4Node::rename(StringView from, const RefPtr<Node>& to_dir, StringView to) {
    if (type() != Type::kDirectory || to_dir->type() != Type::kDirectory) return -ENOTDIR;
    if (to_dir->file_system() != &fs_) return -EXDEV;
    if (is_dot(from) || is_dot(to)) return -EINVAL;
    if (int64_t r = fs_.begin_operation(); r < 0) return r;
    auto* destination = static_cast<Ext4Node*>(to_dir.get());
    Slot source;
    if (!find(from, source)) return -ENOENT;
    RefPtr<Ext4Node> node = fs_.node(source.ino);
    if (!node) return -EUCLEAN;
    if (node->type() == Type::kDirectory) {  // not into itself or below it
        for (Node* up = destination; up; up = up->parent.get())
            if (up == node.get()) return -EINVAL;
    }
    Slot replaced;
    if (destination->find(to, replaced))
        if (int64_t r = destination->remove_entry(to); r < 0) return r;
    if (!find(from, source)) return -ENOENT;  // the removal may have moved entries of this directory
    if (int64_t r = destination->insert(to, node->ino_, file_type_of(node->type())); r < 0) return r;
    if (!find(from, source)) return -EUCLEAN;
    if (int64_t r = erase(source); r < 0) return r;
    if (node->type() == Type::kDirectory && destination != this) {
        if (int64_t r = node->set_dotdot(destination->ino_); r < 0) return r;
        node->parent = to_dir;
        adjust_links(-1);
        destination->adjust_links(1);
        if (int64_t r = destination->store(); r < 0) return r;
        if (int64_t r = store(); r < 0) return r;
    }
    return node->store();
}

}  // namespace kiln::fs::ext4
