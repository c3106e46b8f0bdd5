#include "fs/file.h"

#include "core/errno.h"
#include "lib/string.h"
#include "lib/utility.h"

namespace kiln::fs {

int64_t NodeFile::read(const IoBuffer& buffer, size_t size) {
    if (node_->type() == Type::kDirectory) return -EISDIR;
    int64_t n = node_->read(offset_, buffer, size);
    if (n > 0 && node_->seekable()) offset_ += static_cast<uint64_t>(n);
    return n;
}

int64_t NodeFile::write(const IoBuffer& buffer, size_t size) {
    if (flags() & kOpenAppend) offset_ = node_->size();
    int64_t n = node_->write(offset_, buffer, size);
    if (n > 0 && node_->seekable()) offset_ += static_cast<uint64_t>(n);
    return n;
}

int64_t NodeFile::pread(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (!node_->seekable()) return -ESPIPE;
    return node_->read(offset, buffer, size);
}

int64_t NodeFile::pwrite(uint64_t offset, const IoBuffer& buffer, size_t size) {
    if (!node_->seekable()) return -ESPIPE;
    return node_->write(offset, buffer, size);
}

int64_t NodeFile::seek(int64_t offset, int whence) {
    if (!node_->seekable()) return -ESPIPE;
    int64_t base;
    switch (whence) {
        case 0: base = 0; break;                                    // SEEK_SET
        case 1: base = static_cast<int64_t>(offset_); break;        // SEEK_CUR
        case 2: base = static_cast<int64_t>(node_->size()); break;  // SEEK_END
        default: return -EINVAL;
    }
    const int64_t target = base + offset;
    if (target < 0) return -EINVAL;
    offset_ = static_cast<uint64_t>(target);
    return target;
}

// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }, 8-aligned.
int64_t NodeFile::read_directory(const IoBuffer& buffer, size_t size) {
    if (node_->type() != Type::kDirectory) return -ENOTDIR;
    size_t written = 0;
    for (;;) {
        // Positions 0 and 1 are "." and ".."; entries follow.
        DirEntry entry;
        if (offset_ == 0)
            entry = {".", node_->ino(), Type::kDirectory};
        else if (offset_ == 1)
            entry = {"..", node_->parent ? node_->parent->ino() : node_->ino(), Type::kDirectory};
        else if (!node_->entry(offset_ - 2, entry))
            break;
        const size_t reclen = (19 + entry.name.size() + 1 + 7) & ~size_t{7};
        if (written + reclen > size) {
            if (written == 0) return -EINVAL;
            break;
        }
        uint8_t record[19 + 256 + 8] = {};
        const uint64_t ino = entry.ino;
        const int64_t next = static_cast<int64_t>(offset_ + 1);
        const uint16_t len = static_cast<uint16_t>(reclen);
        memcpy(record, &ino, 8);
        memcpy(record + 8, &next, 8);
        memcpy(record + 16, &len, 2);
        record[18] = static_cast<uint8_t>(static_cast<uint32_t>(entry.type) >> 12);  // DT_* = S_IFMT >> 12
        memcpy(record + 19, entry.name.data(), entry.name.size());
        if (buffer.copy_out(written, record, reclen) != 0) return -EFAULT;
        written += reclen;
        ++offset_;
    }
    return static_cast<int64_t>(written);
}

int FdTable::allocate(RefPtr<File> file, bool cloexec, int minimum) {
    for (int fd = minimum; fd < kMaxFds; ++fd) {
        if (static_cast<size_t>(fd) < slots_.size() && slots_[static_cast<size_t>(fd)].file) continue;
        if (install(fd, move(file), cloexec) < 0) return -ENOMEM;
        return fd;
    }
    return -EMFILE;
}

int64_t FdTable::install(int fd, RefPtr<File> file, bool cloexec) {
    if (fd < 0 || fd >= kMaxFds) return -EBADF;
    while (slots_.size() <= static_cast<size_t>(fd))
        if (!slots_.push_back({})) return -ENOMEM;
    slots_[static_cast<size_t>(fd)] = {move(file), cloexec};
    return fd;
}

RefPtr<File> FdTable::get(int fd) const {
    if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return {};
    return slots_[static_cast<size_t>(fd)].file;
}

int64_t FdTable::close(int fd) {
    if (!get(fd)) return -EBADF;
    slots_[static_cast<size_t>(fd)] = {};
    return 0;
}

bool FdTable::copy_from(const FdTable& other) {
    if (!slots_.reserve(other.slots_.size())) return false;
    for (const Slot& slot : other.slots_) (void)slots_.push_back({slot.file, slot.cloexec});
    return true;
}

void FdTable::close_on_exec() {
    for (Slot& slot : slots_)
        if (slot.cloexec) slot = {};
}

bool FdTable::cloexec(int fd) const { return get(fd) && slots_[static_cast<size_t>(fd)].cloexec; }

int64_t FdTable::set_cloexec(int fd, bool on) {
    if (!get(fd)) return -EBADF;
    slots_[static_cast<size_t>(fd)].cloexec = on;
    return 0;
}

}  // namespace kiln::fs
