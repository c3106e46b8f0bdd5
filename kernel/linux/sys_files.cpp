// File system calls over the VFS (fs/): descriptors, paths, metadata, directories.
#include "core/errno.h"
#include "fs/ext4/file_system.h"
#include "fs/file.h"
#include "fs/ramfs.h"
#include "fs/vfs.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/at_paths.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/page_allocator.h"
#include "time/clock.h"

namespace kiln::linux {

int64_t base_dir(uint64_t dirfd, RefPtr<fs::Node>& out) {
    if (static_cast<int>(dirfd) == kAtFdcwd) {
        out = process().cwd;
        return 0;
    }
    RefPtr<fs::File> f = process().fds.get(static_cast<int>(dirfd));
    if (!f) return -EBADF;
    out = f->node();
    if (!out || out->type() != fs::Type::kDirectory) return -ENOTDIR;
    return 0;
}

namespace {

Process& proc() { return process(); }

RefPtr<fs::File> file_of(uint64_t fd) { return proc().fds.get(static_cast<int>(fd)); }

struct UserPath {
    char text[fs::kPathMax];
    size_t size = 0;
    StringView view() const { return {text, size}; }
};

int64_t read_path(uint64_t user, UserPath& out) {
    const int64_t n = copy_string_from_user(out.text, user, sizeof(out.text));
    if (n < 0) return n;
    out.size = static_cast<size_t>(n);
    return 0;
}

int64_t lookup_at(uint64_t dirfd, uint64_t user_path, uint64_t flags, RefPtr<fs::Node>& out) {
    UserPath path;
    if (int64_t r = read_path(user_path, path); r < 0) return r;
    if (path.size == 0) {
        if (!(flags & kAtEmptyPath)) return -ENOENT;
        if (static_cast<int>(dirfd) == kAtFdcwd) {
            out = proc().cwd;
            return 0;
        }
        RefPtr<fs::File> f = file_of(dirfd);
        if (!f) return -EBADF;
        out = f->node();
        return out ? 0 : -EBADF;
    }
    RefPtr<fs::Node> base;
    if (path.text[0] != '/')
        if (int64_t r = base_dir(dirfd, base); r < 0) return r;
    return fs::resolve(path.view(), base, !(flags & kAtSymlinkNoFollow), out);
}

// The directory that holds (or would hold) `user_path`, relative to `dirfd`, and the last name
// of the path; `path` keeps the text `name` points into.
int64_t parent_at(uint64_t dirfd, uint64_t user_path, UserPath& path, RefPtr<fs::Node>& parent, StringView& name) {
    if (int64_t r = read_path(user_path, path); r < 0) return r;
    RefPtr<fs::Node> base;
    if (path.size > 0 && path.text[0] != '/')
        if (int64_t r = base_dir(dirfd, base); r < 0) return r;
    return fs::resolve_parent(path.view(), base, parent, name);
}

// A new file's owner, as Linux gives it: the creator's file-system uid and gid (its effective
// ones unless setfsuid/setfsgid changed them).
fs::Owner new_owner() { return {proc().credentials.fsuid, proc().credentials.fsgid}; }

// struct stat of x86-64.
int64_t write_stat(uint64_t user, fs::Node& node) {
    uint8_t st[144] = {};
    auto put64 = [&st](size_t at, uint64_t v) { memcpy(st + at, &v, 8); };
    auto put32 = [&st](size_t at, uint32_t v) { memcpy(st + at, &v, 4); };
    put64(0, 0x1);  // st_dev
    put64(8, node.ino());
    put64(16, node.type() == fs::Type::kDirectory ? 2 : 1);
    put32(24, node.mode());
    put32(28, node.uid());
    put32(32, node.gid());
    put64(40, node.rdev());
    put64(48, node.size());
    put64(56, 4096);
    put64(64, (node.size() + 511) / 512);
    static constexpr size_t kTimes[] = {72, 88, 104};  // atime, mtime, ctime
    for (size_t at : kTimes) {
        put64(at, node.mtime_ns / 1000000000);
        put64(at + 8, node.mtime_ns % 1000000000);
    }
    return copy_to_user(user, st, sizeof(st));
}

int64_t write_anonymous_stat(uint64_t user, uint32_t mode) {
    uint8_t st[144] = {};
    memcpy(st + 24, &mode, 4);
    const uint64_t blksize = 4096;
    memcpy(st + 56, &blksize, 8);
    return copy_to_user(user, st, sizeof(st));
}

int64_t sys_read(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->readable()) return -EBADF;
    return f->read(fs::IoBuffer::user(a.a[1]), a.a[2]);
}

int64_t sys_write(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->writable()) return -EBADF;
    return f->write(fs::IoBuffer::user(a.a[1]), a.a[2]);
}

int64_t sys_pread64(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->readable()) return -EBADF;
    if (static_cast<int64_t>(a.a[3]) < 0) return -EINVAL;
    return f->pread(a.a[3], fs::IoBuffer::user(a.a[1]), a.a[2]);
}

int64_t sys_pwrite64(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->writable()) return -EBADF;
    if (static_cast<int64_t>(a.a[3]) < 0) return -EINVAL;
    return f->pwrite(a.a[3], fs::IoBuffer::user(a.a[1]), a.a[2]);
}

constexpr int64_t kCurrentPosition = -1;

// readv and writev (at the file's position), preadv and pwritev (at `offset`): one call per
// iovec, stopping at the first short transfer.
int64_t vector_io(SyscallArgs& a, bool write, int64_t offset = kCurrentPosition) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !(write ? f->writable() : f->readable())) return -EBADF;
    const uint64_t count = a.a[2];
    if (count > 1024) return -EINVAL;
    if (offset < kCurrentPosition) return -EINVAL;
    int64_t total = 0;
    for (uint64_t i = 0; i < count; ++i) {
        uint64_t iov[2];
        if (copy_from_user(iov, a.a[1] + i * 16, 16) != 0) return total > 0 ? total : -EFAULT;
        if (iov[1] == 0) continue;
        const auto buffer = fs::IoBuffer::user(iov[0]);
        int64_t n;
        if (offset == kCurrentPosition)
            n = write ? f->write(buffer, iov[1]) : f->read(buffer, iov[1]);
        else
            n = write ? f->pwrite(static_cast<uint64_t>(offset + total), buffer, iov[1])
                      : f->pread(static_cast<uint64_t>(offset + total), buffer, iov[1]);
        if (n < 0) return total > 0 ? total : n;
        total += n;
        if (static_cast<uint64_t>(n) < iov[1]) break;
    }
    return total;
}

int64_t sys_readv(SyscallArgs& a) { return vector_io(a, false); }
int64_t sys_writev(SyscallArgs& a) { return vector_io(a, true); }
int64_t positioned_vector_io(SyscallArgs& a, bool write) {
    const auto offset = static_cast<int64_t>(a.a[3]);
    return offset < 0 ? -EINVAL : vector_io(a, write, offset);
}
int64_t sys_preadv(SyscallArgs& a) { return positioned_vector_io(a, false); }
int64_t sys_pwritev(SyscallArgs& a) { return positioned_vector_io(a, true); }
// preadv2 and pwritev2: offset -1 is the file's position; no RWF_* flag is supported.
int64_t sys_preadv2(SyscallArgs& a) {
    return a.a[5] != 0 ? -EOPNOTSUPP : vector_io(a, false, static_cast<int64_t>(a.a[3]));
}
int64_t sys_pwritev2(SyscallArgs& a) {
    return a.a[5] != 0 ? -EOPNOTSUPP : vector_io(a, true, static_cast<int64_t>(a.a[3]));
}

int64_t sys_lseek(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    return f->seek(static_cast<int64_t>(a.a[1]), static_cast<int>(a.a[2]));
}

int64_t sys_close(SyscallArgs& a) { return proc().fds.close(static_cast<int>(a.a[0])); }

// close_range(first, last, flags): closes (or, with CLOSE_RANGE_CLOEXEC, marks close-on-exec)
// every open descriptor in [first, last]. CLOSE_RANGE_UNSHARE changes nothing: no process here
// shares its table.
int64_t sys_close_range(SyscallArgs& a) {
    constexpr uint64_t kUnshare = 2, kCloexec = 4;
    const auto first = static_cast<uint32_t>(a.a[0]), last = static_cast<uint32_t>(a.a[1]);
    if (first > last || (a.a[2] & ~(kUnshare | kCloexec))) return -EINVAL;
    const uint32_t end = min<uint32_t>(last, fs::FdTable::kMaxFds - 1);
    for (uint32_t fd = first; fd <= end && fd < static_cast<uint32_t>(fs::FdTable::kMaxFds); ++fd) {
        if (!proc().fds.get(static_cast<int>(fd))) continue;
        if (a.a[2] & kCloexec)
            (void)proc().fds.set_cloexec(static_cast<int>(fd), true);
        else
            (void)proc().fds.close(static_cast<int>(fd));
    }
    return 0;
}

int64_t open_at(uint64_t dirfd, uint64_t user_path, uint64_t flags, uint64_t mode) {
    UserPath path;
    if (int64_t r = read_path(user_path, path); r < 0) return r;
    if (path.size == 0) return -ENOENT;
    RefPtr<fs::Node> base;
    if (path.text[0] != '/')
        if (int64_t r = base_dir(dirfd, base); r < 0) return r;
    RefPtr<fs::Node> node;
    int64_t r = fs::resolve(path.view(), base, !(flags & fs::kOpenNoFollow), node);
    if (r == 0 && (flags & fs::kOpenCreate) && (flags & fs::kOpenExclusive)) return -EEXIST;
    if (r == -ENOENT && (flags & fs::kOpenCreate)) {
        RefPtr<fs::Node> parent;
        StringView name;
        if ((r = fs::resolve_parent(path.view(), base, parent, name)) < 0) return r;
        if ((r = parent->create(name, fs::Type::kRegular, static_cast<uint32_t>(mode) & ~proc().umask, {}, new_owner(),
                                node)) < 0)
            return r;
        node->mtime_ns = time::realtime_ns();
    } else if (r < 0) {
        return r;
    }
    if (node->type() == fs::Type::kSymlink) return -ELOOP;  // O_NOFOLLOW on a link
    if ((flags & fs::kOpenDirectory) && node->type() != fs::Type::kDirectory) return -ENOTDIR;
    const uint32_t access = flags & fs::kOpenAccessMode;
    if (node->type() == fs::Type::kDirectory && access != fs::kOpenReadOnly) return -EISDIR;
    if ((flags & fs::kOpenTruncate) && access != fs::kOpenReadOnly && node->type() == fs::Type::kRegular)
        if ((r = node->truncate(0)) < 0) return r;
    auto file = make_ref<fs::NodeFile>(node, static_cast<uint32_t>(flags));
    return proc().fds.allocate(file, flags & fs::kOpenCloexec);
}

int64_t sys_open(SyscallArgs& a) { return open_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], a.a[2]); }
int64_t sys_openat(SyscallArgs& a) { return open_at(a.a[0], a.a[1], a.a[2], a.a[3]); }
int64_t sys_creat(SyscallArgs& a) {
    return open_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], fs::kOpenCreate | fs::kOpenWriteOnly | fs::kOpenTruncate,
                   a.a[1]);
}

int64_t sys_fstat(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    RefPtr<fs::Node> node = f->node();
    if (!node) return write_anonymous_stat(a.a[1], f->anonymous_mode());
    return write_stat(a.a[1], *node);
}

int64_t stat_at(uint64_t dirfd, uint64_t path, uint64_t user_stat, uint64_t flags) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(dirfd, path, flags, node); r < 0) {
        // fstatat(fd, "", AT_EMPTY_PATH) on a pipe or eventfd: no node, but a stat all the same.
        if (r == -EBADF || !(flags & kAtEmptyPath)) return r;
        RefPtr<fs::File> f = file_of(dirfd);
        return f ? write_anonymous_stat(user_stat, f->anonymous_mode()) : r;
    }
    return write_stat(user_stat, *node);
}

int64_t sys_stat(SyscallArgs& a) { return stat_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], 0); }
int64_t sys_lstat(SyscallArgs& a) {
    return stat_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], kAtSymlinkNoFollow);
}
int64_t sys_newfstatat(SyscallArgs& a) { return stat_at(a.a[0], a.a[1], a.a[2], a.a[3]); }

int64_t sys_statx(SyscallArgs& a) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(a.a[0], a.a[1], a.a[2], node); r < 0) return r;
    uint8_t st[256] = {};
    auto put64 = [&st](size_t at, uint64_t v) { memcpy(st + at, &v, 8); };
    auto put32 = [&st](size_t at, uint32_t v) { memcpy(st + at, &v, 4); };
    put32(0, 0x7ff);  // STATX_BASIC_STATS
    put32(4, 4096);
    put32(16, node->type() == fs::Type::kDirectory ? 2 : 1);
    put32(20, node->uid());
    put32(24, node->gid());
    const uint16_t mode = static_cast<uint16_t>(node->mode());
    memcpy(st + 28, &mode, 2);
    put64(32, node->ino());
    put64(40, node->size());
    put64(48, (node->size() + 511) / 512);
    static constexpr size_t kTimes[] = {64, 80, 96, 112};  // atime, btime, ctime, mtime
    for (size_t at : kTimes) {
        put64(at, node->mtime_ns / 1000000000);
        put32(at + 8, static_cast<uint32_t>(node->mtime_ns % 1000000000));
    }
    put32(128, node->rdev() >> 8);
    put32(132, node->rdev() & 0xff);
    return copy_to_user(a.a[4], st, sizeof(st));
}

int64_t sys_getdents64(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    return f->read_directory(fs::IoBuffer::user(a.a[1]), a.a[2]);
}

int64_t make_directory(uint64_t dirfd, uint64_t user_path, uint64_t mode) {
    UserPath path;
    RefPtr<fs::Node> parent;
    StringView name;
    if (int64_t r = parent_at(dirfd, user_path, path, parent, name); r < 0) return r;
    RefPtr<fs::Node> dir;
    return parent->create(name, fs::Type::kDirectory, static_cast<uint32_t>(mode) & ~proc().umask, {}, new_owner(),
                          dir);
}

int64_t sys_mkdir(SyscallArgs& a) { return make_directory(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1]); }
int64_t sys_mkdirat(SyscallArgs& a) { return make_directory(a.a[0], a.a[1], a.a[2]); }

int64_t remove_at(uint64_t dirfd, uint64_t user_path, uint64_t flags) {
    UserPath path;
    RefPtr<fs::Node> parent;
    StringView name;
    if (int64_t r = parent_at(dirfd, user_path, path, parent, name); r < 0) return r;
    RefPtr<fs::Node> node = parent->lookup(name);
    if (!node) return -ENOENT;
    const bool is_dir = node->type() == fs::Type::kDirectory;
    if ((flags & kAtRemoveDir) && !is_dir) return -ENOTDIR;
    if (!(flags & kAtRemoveDir) && is_dir) return -EISDIR;
    if (is_dir && node->entry_count() > 0) return -ENOTEMPTY;
    return parent->remove_entry(name);
}

int64_t sys_unlink(SyscallArgs& a) { return remove_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0); }
int64_t sys_rmdir(SyscallArgs& a) { return remove_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], kAtRemoveDir); }
int64_t sys_unlinkat(SyscallArgs& a) { return remove_at(a.a[0], a.a[1], a.a[2]); }

int64_t rename_at(uint64_t old_dirfd, uint64_t old_user, uint64_t new_dirfd, uint64_t new_user) {
    UserPath from, to;
    RefPtr<fs::Node> from_parent, to_parent;
    StringView from_name, to_name;
    if (int64_t r = parent_at(old_dirfd, old_user, from, from_parent, from_name); r < 0) return r;
    if (int64_t r = parent_at(new_dirfd, new_user, to, to_parent, to_name); r < 0) return r;
    RefPtr<fs::Node> node = from_parent->lookup(from_name);
    if (!node) return -ENOENT;
    if (node->file_system() != to_parent->file_system() || from_parent->file_system() != to_parent->file_system())
        return -EXDEV;
    if (RefPtr<fs::Node> existing = to_parent->lookup(to_name)) {
        if (existing == node) return 0;
        if (existing->type() == fs::Type::kDirectory) {
            if (node->type() != fs::Type::kDirectory) return -EISDIR;
            if (existing->entry_count() > 0) return -ENOTEMPTY;
        } else if (node->type() == fs::Type::kDirectory) {
            return -ENOTDIR;
        }
    }
    return from_parent->rename(from_name, to_parent, to_name);
}

int64_t sys_rename(SyscallArgs& a) {
    return rename_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], static_cast<uint64_t>(kAtFdcwd), a.a[1]);
}
int64_t sys_renameat(SyscallArgs& a) { return rename_at(a.a[0], a.a[1], a.a[2], a.a[3]); }
int64_t sys_renameat2(SyscallArgs& a) { return a.a[4] != 0 ? -EINVAL : rename_at(a.a[0], a.a[1], a.a[2], a.a[3]); }

int64_t symlink_at(uint64_t user_target, uint64_t dirfd, uint64_t user_path) {
    UserPath target, path;
    if (int64_t r = read_path(user_target, target); r < 0) return r;
    RefPtr<fs::Node> parent;
    StringView name;
    if (int64_t r = parent_at(dirfd, user_path, path, parent, name); r < 0) return r;
    RefPtr<fs::Node> link;
    return parent->create(name, fs::Type::kSymlink, 0777, target.view(), new_owner(), link);
}

int64_t sys_symlink(SyscallArgs& a) { return symlink_at(a.a[0], static_cast<uint64_t>(kAtFdcwd), a.a[1]); }
int64_t sys_symlinkat(SyscallArgs& a) { return symlink_at(a.a[0], a.a[1], a.a[2]); }

int64_t read_link_at(uint64_t dirfd, uint64_t user_path, uint64_t buffer, uint64_t size) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(dirfd, user_path, kAtSymlinkNoFollow, node); r < 0) return r;
    if (node->type() != fs::Type::kSymlink) return -EINVAL;
    const StringView target = node->link_target();
    const size_t n = min<uint64_t>(target.size(), size);
    if (copy_to_user(buffer, target.data(), n) != 0) return -EFAULT;
    return static_cast<int64_t>(n);
}

int64_t sys_readlink(SyscallArgs& a) { return read_link_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], a.a[2]); }
int64_t sys_readlinkat(SyscallArgs& a) { return read_link_at(a.a[0], a.a[1], a.a[2], a.a[3]); }

int64_t access_at(uint64_t dirfd, uint64_t path, uint64_t flags) {
    RefPtr<fs::Node> node;
    return lookup_at(dirfd, path, flags & kAtSymlinkNoFollow, node);  // root may do anything
}

int64_t sys_access(SyscallArgs& a) { return access_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0); }
int64_t sys_faccessat(SyscallArgs& a) { return access_at(a.a[0], a.a[1], 0); }
int64_t sys_faccessat2(SyscallArgs& a) { return access_at(a.a[0], a.a[1], a.a[3]); }

int64_t change_directory(RefPtr<fs::Node> node, StringView path) {
    if (node->type() != fs::Type::kDirectory) return -ENOTDIR;
    Process& p = proc();
    p.cwd = node;
    // Keep a lexical path for getcwd: absolute paths replace, relative ones append.
    if (path.empty() || path[0] != '/') {
        char joined[fs::kPathMax];
        const StringView cwd = p.cwd_path.view();
        size_t n = 0;
        memcpy(joined, cwd.data(), cwd.size());
        n = cwd.size();
        if (n > 1) joined[n++] = '/';
        if (n + path.size() >= sizeof(joined)) return -ENAMETOOLONG;
        memcpy(joined + n, path.data(), path.size());
        n += path.size();
        p.cwd_path = String(StringView(joined, n));
    } else {
        p.cwd_path = String(path);
    }
    return 0;
}

int64_t sys_chdir(SyscallArgs& a) {
    UserPath path;
    if (int64_t r = read_path(a.a[0], path); r < 0) return r;
    RefPtr<fs::Node> node;
    if (int64_t r = fs::resolve(path.view(), proc().cwd, true, node); r < 0) return r;
    return change_directory(node, path.view());
}

int64_t sys_fcntl(SyscallArgs& a) {
    const int fd = static_cast<int>(a.a[0]);
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    constexpr uint64_t kDupFd = 0, kGetFd = 1, kSetFd = 2, kGetFl = 3, kSetFl = 4, kGetLk = 5, kSetLk = 6, kSetLkW = 7,
                       kDupFdCloexec = 1030;
    switch (a.a[1]) {
        case kDupFd: return proc().fds.allocate(f, false, static_cast<int>(a.a[2]));
        case kDupFdCloexec: return proc().fds.allocate(f, true, static_cast<int>(a.a[2]));
        case kGetFd: return proc().fds.cloexec(fd) ? 1 : 0;
        case kSetFd: return proc().fds.set_cloexec(fd, a.a[2] & 1);
        case kGetFl: return f->flags() & ~fs::kOpenCloexec;
        case kSetFl: f->set_status_flags(static_cast<uint32_t>(a.a[2])); return 0;
        case kGetLk:
        case kSetLk:
        case kSetLkW: return 0;  // one process: every lock is free
        default: return -EINVAL;
    }
}

int64_t sys_dup(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    return proc().fds.allocate(f, false);
}

int64_t dup_to(uint64_t old_fd, uint64_t new_fd, bool cloexec) {
    RefPtr<fs::File> f = file_of(old_fd);
    if (!f) return -EBADF;
    return proc().fds.install(static_cast<int>(new_fd), f, cloexec);
}

int64_t sys_dup2(SyscallArgs& a) {
    if (a.a[0] == a.a[1]) return file_of(a.a[0]) ? static_cast<int64_t>(a.a[0]) : -EBADF;
    return dup_to(a.a[0], a.a[1], false);
}

int64_t sys_dup3(SyscallArgs& a) {
    if (a.a[0] == a.a[1]) return -EINVAL;
    if (a.a[2] & ~uint64_t{fs::kOpenCloexec}) return -EINVAL;
    return dup_to(a.a[0], a.a[1], a.a[2] & fs::kOpenCloexec);
}

int64_t sys_ioctl(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    constexpr uint64_t kFionbio = 0x5421, kFioclex = 0x5451, kFionclex = 0x5450;
    if (a.a[1] == kFionbio) {
        int on = 0;
        if (get_user(on, a.a[2]) != 0) return -EFAULT;
        f->set_status_flags(on ? (f->flags() | fs::kOpenNonBlock) : (f->flags() & ~fs::kOpenNonBlock));
        return 0;
    }
    if (a.a[1] == kFioclex) return proc().fds.set_cloexec(static_cast<int>(a.a[0]), true);
    if (a.a[1] == kFionclex) return proc().fds.set_cloexec(static_cast<int>(a.a[0]), false);
    return f->ioctl(a.a[1], a.a[2]);
}

int64_t sys_ftruncate(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->writable()) return -EBADF;
    RefPtr<fs::Node> node = f->node();
    if (!node) return -EINVAL;
    return node->truncate(a.a[1]);
}

int64_t sys_truncate(SyscallArgs& a) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0, node); r < 0) return r;
    return node->truncate(a.a[1]);
}

int64_t sys_fsync(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    return f->node() ? f->node()->sync() : 0;
}

int64_t sys_chmod(SyscallArgs& a) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0, node); r < 0) return r;
    node->set_permissions(static_cast<uint32_t>(a.a[1]));
    return 0;
}

int64_t sys_fchmod(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->node()) return -EBADF;
    f->node()->set_permissions(static_cast<uint32_t>(a.a[1]));
    return 0;
}

int64_t sys_fchmodat(SyscallArgs& a) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(a.a[0], a.a[1], 0, node); r < 0) return r;
    node->set_permissions(static_cast<uint32_t>(a.a[2]));
    return 0;
}

// sendfile: a copy through a kernel buffer (no page cache to splice from).
int64_t sys_sendfile(SyscallArgs& a) {
    RefPtr<fs::File> out = file_of(a.a[0]), in = file_of(a.a[1]);
    if (!out || !in || !out->writable() || !in->readable()) return -EBADF;
    uint64_t offset = 0;
    const bool explicit_offset = a.a[2] != 0;
    if (explicit_offset && get_user(offset, a.a[2]) != 0) return -EFAULT;
    uint8_t chunk[4096];
    uint64_t done = 0;
    while (done < a.a[3]) {
        const size_t want = min<uint64_t>(sizeof(chunk), a.a[3] - done);
        const int64_t n = explicit_offset ? in->pread(offset, fs::IoBuffer::kernel(chunk), want)
                                          : in->read(fs::IoBuffer::kernel(chunk), want);
        if (n <= 0) {
            if (n < 0 && done == 0) return n;
            break;
        }
        const int64_t w = out->write(fs::IoBuffer::kernel(static_cast<const void*>(chunk)), static_cast<size_t>(n));
        if (w < 0) {
            if (done == 0) return w;
            break;  // report what went; the offset below must say so too
        }
        done += static_cast<uint64_t>(w);
        offset += static_cast<uint64_t>(w);
        if (w < n) {
            // Only part of the chunk went: a file read through its own position gives back the rest.
            if (!explicit_offset) in->seek(-static_cast<int64_t>(n - w), 1);
            break;
        }
    }
    if (explicit_offset && put_user(a.a[2], offset) != 0) return -EFAULT;
    return static_cast<int64_t>(done);
}

// Only the modification time is kept (stat reports it as all three): set it to `ns`.
constexpr uint64_t kUtimeNow = (1ull << 30) - 1, kUtimeOmit = (1ull << 30) - 2;

int64_t set_mtime(uint64_t dirfd, uint64_t user_path, uint64_t flags, bool now, uint64_t ns) {
    RefPtr<fs::Node> node;
    if (user_path == 0) {  // futimens: the descriptor itself
        RefPtr<fs::File> f = file_of(dirfd);
        if (!f || !(node = f->node())) return -EBADF;
    } else if (int64_t r = lookup_at(dirfd, user_path, flags, node); r < 0) {
        return r;
    }
    node->mtime_ns = now ? time::realtime_ns() : ns;
    return 0;
}

int64_t sys_utimensat(SyscallArgs& a) {
    if (a.a[3] & ~(kAtSymlinkNoFollow | kAtEmptyPath)) return -EINVAL;
    if (a.a[2] == 0) return set_mtime(a.a[0], a.a[1], a.a[3], true, 0);
    int64_t ts[4];  // atime, mtime
    if (copy_from_user(ts, a.a[2], sizeof(ts)) != 0) return -EFAULT;
    for (int i = 1; i < 4; i += 2)  // the nanoseconds of each
        if (ts[i] != static_cast<int64_t>(kUtimeNow) && ts[i] != static_cast<int64_t>(kUtimeOmit) &&
            (ts[i] < 0 || ts[i] >= 1000000000))
            return -EINVAL;
    if (ts[3] == static_cast<int64_t>(kUtimeOmit)) return 0;
    if (ts[2] < 0) return -EINVAL;
    return set_mtime(a.a[0], a.a[1], a.a[3], ts[3] == static_cast<int64_t>(kUtimeNow),
                     static_cast<uint64_t>(ts[2]) * 1000000000 + static_cast<uint64_t>(ts[3]));
}

// utimes and futimesat: struct timeval[2]; utime: struct utimbuf {actime, modtime} in seconds.
int64_t utimes_at(uint64_t dirfd, uint64_t user_path, uint64_t user_times) {
    if (user_times == 0) return set_mtime(dirfd, user_path, 0, true, 0);
    int64_t tv[4];
    if (copy_from_user(tv, user_times, sizeof(tv)) != 0) return -EFAULT;
    if (tv[2] < 0 || tv[3] < 0 || tv[3] >= 1000000) return -EINVAL;
    return set_mtime(dirfd, user_path, 0, false, static_cast<uint64_t>(tv[2]) * 1000000000 + tv[3] * 1000);
}
int64_t sys_utimes(SyscallArgs& a) { return utimes_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1]); }
int64_t sys_futimesat(SyscallArgs& a) { return utimes_at(a.a[0], a.a[1], a.a[2]); }
int64_t sys_utime(SyscallArgs& a) {
    if (a.a[1] == 0) return set_mtime(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0, true, 0);
    int64_t times[2];
    if (copy_from_user(times, a.a[1], sizeof(times)) != 0) return -EFAULT;
    if (times[1] < 0) return -EINVAL;
    return set_mtime(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0, false, static_cast<uint64_t>(times[1]) * 1000000000);
}

// chown, fchown, lchown, fchownat: -1 leaves an id as it is. No permission check: the caller
// may give any file to anyone, as root may (one application owns the instance and its files).
// As on Linux, a change of owner takes the set-user-ID bit off a file that is not a directory,
// and the set-group-ID bit where group execution makes it one.
int64_t set_owner(fs::Node& node, uint64_t user, uint64_t group) {
    const uint32_t uid = static_cast<uint32_t>(user), gid = static_cast<uint32_t>(group);
    constexpr uint32_t kUnchanged = 0xffffffff;
    if (node.type() != fs::Type::kDirectory && node.type() != fs::Type::kSymlink) {
        uint32_t permissions = node.mode() & 07777;
        const uint32_t before = permissions;
        permissions &= ~04000u;
        if (permissions & 010) permissions &= ~02000u;
        if (permissions != before) node.set_permissions(permissions);
    }
    return node.set_owner({uid == kUnchanged ? node.uid() : uid, gid == kUnchanged ? node.gid() : gid});
}

int64_t chown_at(uint64_t dirfd, uint64_t user_path, uint64_t user, uint64_t group, uint64_t flags) {
    if (flags & ~(kAtSymlinkNoFollow | kAtEmptyPath)) return -EINVAL;
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(dirfd, user_path, flags, node); r < 0) return r;
    return set_owner(*node, user, group);
}

int64_t sys_chown(SyscallArgs& a) { return chown_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], a.a[2], 0); }
int64_t sys_lchown(SyscallArgs& a) {
    return chown_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], a.a[2], kAtSymlinkNoFollow);
}
int64_t sys_fchownat(SyscallArgs& a) { return chown_at(a.a[0], a.a[1], a.a[2], a.a[3], a.a[4]); }
int64_t sys_fchown(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    // A pipe, socket or eventfd has no node to own: Linux changes its anonymous inode, which
    // nothing here reports again.
    if (!f->node()) return 0;
    return set_owner(*f->node(), a.a[1], a.a[2]);
}

// A hard link: the same node under a second name (not for directories, as on Linux).
int64_t link_at(uint64_t old_dirfd, uint64_t old_user, uint64_t new_dirfd, uint64_t new_user, uint64_t flags) {
    if (flags & ~(kAtEmptyPath | 0x400)) return -EINVAL;  // AT_SYMLINK_FOLLOW
    RefPtr<fs::Node> node;
    if (int64_t r =
            lookup_at(old_dirfd, old_user, (flags & 0x400 ? 0 : kAtSymlinkNoFollow) | (flags & kAtEmptyPath), node);
        r < 0)
        return r;
    if (node->type() == fs::Type::kDirectory) return -EPERM;
    UserPath to;
    RefPtr<fs::Node> parent;
    StringView name;
    if (int64_t r = parent_at(new_dirfd, new_user, to, parent, name); r < 0) return r;
    if (parent->lookup(name)) return -EEXIST;
    if (node->file_system() != parent->file_system()) return -EXDEV;
    return parent->add_entry(name, node);
}
int64_t sys_link(SyscallArgs& a) {
    return link_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], static_cast<uint64_t>(kAtFdcwd), a.a[1], 0);
}
int64_t sys_linkat(SyscallArgs& a) { return link_at(a.a[0], a.a[1], a.a[2], a.a[3], a.a[4]); }

// struct statfs of x86-64 for the one file system, in memory (tmpfs's magic): its size is the
// instance's memory.
int64_t write_statfs(uint64_t user) {
    constexpr uint64_t kTmpfsMagic = 0x01021994;
    const auto& pages = mm::page_allocator();
    const uint64_t fields[15] = {kTmpfsMagic,
                                 4096,
                                 pages.total_pages(),
                                 pages.free_pages(),
                                 pages.free_pages(),
                                 pages.total_pages(),
                                 pages.free_pages(),
                                 0,
                                 255,
                                 4096,
                                 0,
                                 0,
                                 0,
                                 0,
                                 0};
    return copy_to_user(user, fields,
                        sizeof(fields));  // type bsize blocks bfree bavail files ffree fsid namelen frsize flags spare
}
int64_t sys_statfs(SyscallArgs& a) {
    RefPtr<fs::Node> node;
    if (int64_t r = lookup_at(static_cast<uint64_t>(kAtFdcwd), a.a[0], 0, node); r < 0) return r;
    return write_statfs(a.a[1]);
}
int64_t sys_fstatfs(SyscallArgs& a) { return file_of(a.a[0]) ? write_statfs(a.a[1]) : -EBADF; }

// Advice about a file's use, and reading ahead: everything is in memory already.
int64_t sys_fadvise64(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f) return -EBADF;
    if (!f->node() || f->node()->type() == fs::Type::kFifo) return -ESPIPE;
    return a.a[3] <= 5 ? 0 : -EINVAL;  // POSIX_FADV_NORMAL .. NOREUSE
}
int64_t sys_readahead(SyscallArgs& a) {
    RefPtr<fs::File> f = file_of(a.a[0]);
    if (!f || !f->readable()) return -EBADF;
    return f->node() && f->node()->type() == fs::Type::kRegular ? 0 : -EINVAL;
}
// sync commits every volume's journal; syncfs the one a file is on (the memory file system has
// nothing waiting to be written).
int64_t sys_sync(SyscallArgs&) {
    fs::ext4::sync_volumes();
    return 0;
}
int64_t sys_syncfs(SyscallArgs& a) { return sys_fsync(a); }

// A file without a name: memory, read and written as any file, and mapped.
int64_t sys_memfd_create(SyscallArgs& a) {
    constexpr uint64_t kMfdCloexec = 1, kMfdAllowSealing = 2;
    if (a.a[1] & ~(kMfdCloexec | kMfdAllowSealing)) return -EINVAL;
    UserPath name;
    if (int64_t r = read_path(a.a[0], name); r < 0) return r;
    if (name.size > 249) return -EINVAL;
    RefPtr<fs::Node> node(new fs::RamFile(0777));
    return proc().fds.allocate(make_ref<fs::NodeFile>(node, fs::kOpenReadWrite), (a.a[1] & kMfdCloexec) != 0);
}

}  // namespace

void register_file_syscalls(SyscallHandler* t) {
    t[0] = sys_read;
    t[1] = sys_write;
    t[2] = sys_open;
    t[3] = sys_close;
    t[4] = sys_stat;
    t[5] = sys_fstat;
    t[6] = sys_lstat;
    t[8] = sys_lseek;
    t[16] = sys_ioctl;
    t[17] = sys_pread64;
    t[18] = sys_pwrite64;
    t[19] = sys_readv;
    t[20] = sys_writev;
    t[21] = sys_access;
    t[32] = sys_dup;
    t[33] = sys_dup2;
    t[40] = sys_sendfile;
    t[72] = sys_fcntl;
    t[74] = sys_fsync;
    t[75] = sys_fsync;  // fdatasync
    t[76] = sys_truncate;
    t[77] = sys_ftruncate;
    t[80] = sys_chdir;
    t[82] = sys_rename;
    t[83] = sys_mkdir;
    t[84] = sys_rmdir;
    t[85] = sys_creat;
    t[87] = sys_unlink;
    t[88] = sys_symlink;
    t[89] = sys_readlink;
    t[90] = sys_chmod;
    t[91] = sys_fchmod;
    t[92] = sys_chown;   // partial: no permission check (any caller may, as root may)
    t[93] = sys_fchown;  // partial: no permission check (any caller may, as root may)
    t[94] = sys_lchown;  // partial: no permission check (any caller may, as root may)
    t[217] = sys_getdents64;
    t[436] = sys_close_range;
    t[257] = sys_openat;
    t[258] = sys_mkdirat;
    t[260] = sys_fchownat;  // partial: no permission check (any caller may, as root may)
    t[262] = sys_newfstatat;
    t[263] = sys_unlinkat;
    t[264] = sys_renameat;
    t[266] = sys_symlinkat;
    t[267] = sys_readlinkat;
    t[268] = sys_fchmodat;
    t[269] = sys_faccessat;
    t[280] = sys_utimensat;
    t[292] = sys_dup3;
    t[316] = sys_renameat2;
    t[332] = sys_statx;
    t[439] = sys_faccessat2;
    t[86] = sys_link;
    t[265] = sys_linkat;
    t[132] = sys_utime;
    t[235] = sys_utimes;
    t[261] = sys_futimesat;
    t[295] = sys_preadv;
    t[296] = sys_pwritev;
    t[327] = sys_preadv2;
    t[328] = sys_pwritev2;
    t[137] = sys_statfs;
    t[138] = sys_fstatfs;
    t[221] = sys_fadvise64;
    t[187] = sys_readahead;
    t[162] = sys_sync;
    t[306] = sys_syncfs;
    t[319] = sys_memfd_create;
}

}  // namespace kiln::linux
