#include "fs/node.h"

#include "core/errno.h"
#include "lib/string.h"
#include "linux/user_memory.h"

namespace kiln::fs {
namespace {
constinit uint64_t next_ino = 1;
}

int IoBuffer::copy_out(size_t offset, const void* src, size_t size) const {
    if (user_) return linux::copy_to_user(address_ + offset, src, size);
    memcpy(reinterpret_cast<void*>(address_ + offset), src, size);
    return 0;
}

int IoBuffer::copy_in(size_t offset, void* dst, size_t size) const {
    if (user_) return linux::copy_from_user(dst, address_ + offset, size);
    memcpy(dst, reinterpret_cast<const void*>(address_ + offset), size);
    return 0;
}

Node::Node(Type type, uint32_t permissions) : type_(type), permissions_(permissions & 07777), ino_(next_ino++) {}

int64_t Node::read(uint64_t, const IoBuffer&, size_t) { return type_ == Type::kDirectory ? -EISDIR : -EINVAL; }
int64_t Node::write(uint64_t, const IoBuffer&, size_t) { return type_ == Type::kDirectory ? -EISDIR : -EINVAL; }
int64_t Node::truncate(uint64_t) { return type_ == Type::kDirectory ? -EISDIR : -EINVAL; }
int64_t Node::ioctl(uint64_t, uint64_t) { return -ENOTTY; }
RefPtr<Node> Node::lookup(StringView) { return {}; }
int64_t Node::add_entry(StringView, RefPtr<Node>) { return -ENOTDIR; }
int64_t Node::remove_entry(StringView) { return -ENOTDIR; }
bool Node::entry(size_t, DirEntry&) { return false; }
int64_t Node::create(StringView, Type, uint32_t, StringView, Owner, RefPtr<Node>&) { return -ENOTDIR; }

// The memory file system's rename: the node under its new name, then the old name gone.
int64_t Node::rename(StringView from, const RefPtr<Node>& to_dir, StringView to) {
    RefPtr<Node> node = lookup(from);
    if (!node) return -ENOENT;
    if (to_dir->lookup(to)) to_dir->remove_entry(to);
    if (int64_t r = to_dir->add_entry(to, node); r < 0) return r;
    return remove_entry(from);
}

}  // namespace kiln::fs
