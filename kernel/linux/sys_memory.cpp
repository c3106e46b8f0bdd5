// brk, mmap and friends over the application's address space (mm/address_space.h).
#include "core/errno.h"
#include "fs/file.h"
#include "fs/node.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/address_space.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kMapShared = 0x01, kMapPrivate = 0x02, kMapFixed = 0x10, kMapAnonymous = 0x20,
                   kMapFixedNoReplace = 0x100000;
constexpr uint64_t kMremapMayMove = 1, kMremapFixed = 2;
constexpr uint64_t kMadvDontNeed = 4, kMadvFree = 8;

uint32_t prot_of(uint64_t prot) { return static_cast<uint32_t>(prot & 7); }

int64_t sys_brk(SyscallArgs& a) {
    return static_cast<int64_t>(mm::address_space().set_break(process().memory->brk, a.a[0]));
}

int64_t sys_mmap(SyscallArgs& a) {
    const uint64_t addr = a.a[0], length = a.a[1], prot = a.a[2], flags = a.a[3], offset = a.a[5];
    const int fd = static_cast<int>(a.a[4]);
    if (length == 0 || (offset & 4095) != 0) return -EINVAL;
    if (!(flags & (kMapShared | kMapPrivate))) return -EINVAL;
    auto& space = mm::address_space();
    const bool fixed = (flags & (kMapFixed | kMapFixedNoReplace)) != 0;
    if ((flags & kMapFixedNoReplace) && space.check(addr, 1, 0)) return -EEXIST;

    RefPtr<fs::File> file;
    if (!(flags & kMapAnonymous)) {
        file = process().fds.get(fd);
        if (!file) return -EBADF;
        RefPtr<fs::Node> node = file->node();
        if (!node) return -ENODEV;
        // /dev/zero maps as anonymous memory; shared mappings of real files are not supported.
        if (node->type() == fs::Type::kCharDevice)
            file = {};
        else if (flags & kMapShared && prot & mm::kProtWrite)
            return -ENODEV;
    }
    if (file) {
        // A file still the initrd's (a program's libraries): its pages come from there when first
        // touched, and read-only ones are the initrd's own pages, shared by every mapping.
        const RefPtr<fs::Node> node = file->node();
        if (const uint8_t* bytes = node->lasting_bytes()) {
            const int64_t start = space.map(addr, length, prot_of(prot), fixed);
            if (start < 0 || offset >= node->size()) return start;
            const uint64_t at = static_cast<uint64_t>(start);
            const mm::Source source{bytes + offset, at, min(length, node->size() - offset)};
            if (const int64_t error = space.attach_source(at, at + align_up(length, 4096), source); error < 0) {
                space.unmap(at, length);
                return error;
            }
            return start;
        }
    }
    // Else a private file mapping is a copy of the file: map anonymous memory writable, read the
    // file into it, then set the asked-for protection.
    const uint32_t initial = file ? (prot_of(prot) | mm::kProtWrite | mm::kProtRead) : prot_of(prot);
    const int64_t start = space.map(addr, length, initial, fixed);
    if (start < 0 || !file) return start;
    const int64_t n = file->pread(offset, fs::IoBuffer::user(static_cast<uint64_t>(start)), length);
    if (n < 0 && n != -ESPIPE) {
        space.unmap(static_cast<uint64_t>(start), length);
        return n;
    }
    if (initial != prot_of(prot)) space.protect(static_cast<uint64_t>(start), length, prot_of(prot));
    return start;
}

// mincore: one byte per page, 1 if the page is in memory (touched), 0 if not yet.
int64_t sys_mincore(SyscallArgs& a) {
    constexpr uint64_t kPage = 4096;
    const uint64_t start = a.a[0], length = a.a[1];
    if (start % kPage != 0) return -EINVAL;
    auto& space = mm::address_space();
    if (length == 0) return 0;
    if (!space.check(start, length, 0)) return -ENOMEM;
    const uint64_t pages = (length + kPage - 1) / kPage;
    uint8_t chunk[256];
    for (uint64_t done = 0; done < pages;) {
        const uint64_t n = pages - done < sizeof(chunk) ? pages - done : sizeof(chunk);
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t phys;
            chunk[i] = space.physical_page(start + (done + i) * kPage, phys) ? 1 : 0;
        }
        if (copy_to_user(a.a[2] + done, chunk, n) != 0) return -EFAULT;
        done += n;
    }
    return 0;
}

int64_t sys_munmap(SyscallArgs& a) { return mm::address_space().unmap(a.a[0], a.a[1]); }

int64_t sys_mprotect(SyscallArgs& a) { return mm::address_space().protect(a.a[0], a.a[1], prot_of(a.a[2])); }

int64_t sys_mremap(SyscallArgs& a) {
    const uint64_t flags = a.a[3];
    return mm::address_space().remap(a.a[0], a.a[1], a.a[2], flags & kMremapMayMove, flags & kMremapFixed, a.a[4]);
}

int64_t sys_madvise(SyscallArgs& a) {
    if (a.a[0] & 4095) return -EINVAL;
    if (a.a[2] == kMadvDontNeed || a.a[2] == kMadvFree) return mm::address_space().discard(a.a[0], a.a[1]);
    return 0;  // advice only
}

int64_t sys_accept_quietly(SyscallArgs&) { return 0; }  // mlock, munlock, msync: nothing to do

}  // namespace

void register_memory_syscalls(SyscallHandler* t) {
    t[12] = sys_brk;
    t[9] = sys_mmap;
    t[11] = sys_munmap;
    t[27] = sys_mincore;
    t[10] = sys_mprotect;
    t[25] = sys_mremap;
    t[28] = sys_madvise;
    t[26] = sys_accept_quietly;   // msync
    t[149] = sys_accept_quietly;  // mlock
    t[150] = sys_accept_quietly;  // munlock
    t[151] = sys_accept_quietly;  // mlockall
    t[325] = sys_accept_quietly;  // mlock2
}

}  // namespace kiln::linux
