#include "fs/ramfs.h"

#include "core/errno.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "mm/heap.h"

namespace kiln::fs {

RamFile::~RamFile() { heap::free(owned_); }

void RamFile::borrow(const uint8_t* data, size_t size) {
    heap::free(owned_);
    owned_ = nullptr;
    capacity_ = 0;
    borrowed_ = data;
    size_ = size;
}

bool RamFile::make_owned(size_t capacity) {
    if (!borrowed_ && capacity <= capacity_) return true;
    size_t wanted = max(capacity, capacity_ * 2);
    if (wanted < 64) wanted = 64;
    auto* fresh = static_cast<uint8_t*>(heap::allocate(wanted));
    if (fresh == nullptr) return false;
    const uint8_t* old = data();
    if (size_ > 0) memcpy(fresh, old, size_);
    heap::free(owned_);
    owned_ = fresh;
    borrowed_ = nullptr;
    capacity_ = wanted;
    return true;
}

int64_t RamFile::read(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (offset >= size_) return 0;
    const size_t n = min<uint64_t>(size, size_ - offset);
    if (buffer.copy_out(0, data() + offset, n) != 0) return -EFAULT;
    return static_cast<int64_t>(n);
}

int64_t RamFile::write(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (size == 0) return 0;
    if (offset > (1ull << 40) || size > (1ull << 40)) return -EFBIG;
    const uint64_t end = offset + size;
    if (!make_owned(end)) return -ENOSPC;
    if (offset > size_) memset(owned_ + size_, 0, offset - size_);  // a hole reads as zeros
    if (buffer.copy_in(0, owned_ + offset, size) != 0) return -EFAULT;
    if (end > size_) size_ = end;
    return static_cast<int64_t>(size);
}

int64_t RamFile::truncate(uint64_t size) {
    if (size > (1ull << 40)) return -EFBIG;
    if (size > size_) {
        if (!make_owned(size)) return -ENOSPC;
        memset(owned_ + size_, 0, size - size_);
    } else if (borrowed_ == nullptr && owned_ == nullptr) {
        return 0;
    }
    size_ = size;
    return 0;
}

RefPtr<Node> RamDirectory::lookup(StringView name) {
    for (auto& e : entries_)
        if (e.name.view() == name) return e.node;
    return {};
}

int64_t RamDirectory::add_entry(StringView name, RefPtr<Node> node) {
    if (lookup(name)) return -EEXIST;
    String copy(name);
    if (copy.size() != name.size()) return -ENOMEM;
    if (node->type() == Type::kDirectory) node->parent = RefPtr<Node>(this);
    if (!entries_.push_back({move(copy), move(node)})) return -ENOMEM;
    return 0;
}

int64_t RamDirectory::create(StringView name, Type type, uint32_t permissions, StringView link_target, Owner owner,
                             RefPtr<Node>& out) {
    if (type == Type::kRegular)
        out = RefPtr<Node>(new RamFile(permissions));
    else if (type == Type::kDirectory)
        out = RefPtr<Node>(new RamDirectory(permissions));
    else if (type == Type::kSymlink)
        out = RefPtr<Node>(new RamSymlink(link_target));
    else
        return -EINVAL;
    if (!out) return -ENOMEM;
    out->set_owner(owner);
    return add_entry(name, out);
}

int64_t RamDirectory::remove_entry(StringView name) {
    for (size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].name.view() != name) continue;
        entries_.erase(i);
        return 0;
    }
    return -ENOENT;
}

bool RamDirectory::entry(size_t index, DirEntry& out) {
    if (index >= entries_.size()) return false;
    out = {entries_[index].name.view(), entries_[index].node->ino(), entries_[index].node->type()};
    return true;
}

}  // namespace kiln::fs
