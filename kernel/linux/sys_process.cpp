// Process identity, limits, and the per-thread registrations libc makes at start-up.
#include "arch/x86_64/cpu.h"
#include "core/errno.h"
#include "fs/devices.h"
#include "fs/vfs.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/futex.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/address_space.h"
#include "mm/page_allocator.h"
#include "platform/platform.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::linux {
namespace {

int64_t sys_exit(SyscallArgs& a) { exit_thread(static_cast<int>(a.a[0] & 0xff)); }
int64_t sys_exit_group(SyscallArgs& a) { exit_process(static_cast<int>(a.a[0] & 0xff) << 8); }
int64_t sys_getpid(SyscallArgs&) { return process().pid; }
int64_t sys_getppid(SyscallArgs&) { return process().parent ? process().parent->pid : 0; }
int64_t sys_gettid(SyscallArgs&) { return sched::current().tid; }
int64_t sys_zero(SyscallArgs&) { return 0; }

// The process a pid names for the group calls: 0 is the caller.
Process* target(uint64_t pid) {
    const auto p = static_cast<int32_t>(pid);
    if (p == 0) return &process();
    Process* found = find_process(p);
    return found != nullptr && !found->zombie ? found : nullptr;
}

int64_t sys_getpgid(SyscallArgs& a) {
    Process* p = target(a.a[0]);
    return p ? p->pgid : -ESRCH;
}
int64_t sys_getpgrp(SyscallArgs&) { return process().pgid; }
int64_t sys_getsid(SyscallArgs& a) {
    Process* p = target(a.a[0]);
    return p ? p->sid : -ESRCH;
}

// setpgid: the caller or one of its children, into a group of the caller's session.
int64_t sys_setpgid(SyscallArgs& a) {
    if (static_cast<int32_t>(a.a[1]) < 0) return -EINVAL;
    Process* p = target(a.a[0]);
    Process& self = process();
    if (p == nullptr || (p != &self && p->parent != &self)) return -ESRCH;
    if (p->sid != self.sid) return -EPERM;
    if (p->pid == p->sid) return -EPERM;  // a session leader stays in its group
    const int pgid = a.a[1] == 0 ? p->pid : static_cast<int32_t>(a.a[1]);
    if (pgid != p->pid) {
        bool exists = false;
        for (Process* q : all_processes()) exists |= q->pgid == pgid && q->sid == self.sid;
        if (!exists) return -EPERM;
    }
    p->pgid = pgid;
    return 0;
}

int64_t sys_setsid(SyscallArgs&) {
    Process& self = process();
    for (Process* q : all_processes())
        if (q->pgid == self.pid) return -EPERM;  // already leads a group
    self.sid = self.pgid = self.pid;
    return self.sid;
}

int64_t sys_uname(SyscallArgs& a) {
    char u[6 * 65] = {};
    auto set = [&u](int field, StringView text) { memcpy(u + field * 65, text.data(), min<size_t>(text.size(), 64)); };
    set(0, "Linux");
    set(1, process().hostname);
    set(2, "6.1.0-kiln");
    set(3, "#1 SMP Kiln");
    set(4, "x86_64");
    set(5, process().domainname);
    return copy_to_user(a.a[0], u, sizeof(u));
}

// Resource limits: what a process gets by default on Linux, with the stack as mapped.
int64_t limit_of(int resource, uint64_t out[2]) {
    constexpr uint64_t kInfinity = ~0ull;
    switch (resource) {
        case 3:
            out[0] = mm::kStackSize;
            out[1] = kInfinity;
            return 0;  // RLIMIT_STACK
        case 7:
            out[0] = fs::FdTable::kMaxFds;
            out[1] = fs::FdTable::kMaxFds;
            return 0;                              // NOFILE
        case 6: out[0] = out[1] = 4096; return 0;  // RLIMIT_NPROC
        default:
            if (resource < 0 || resource > 15) return -EINVAL;
            out[0] = out[1] = kInfinity;
            return 0;
    }
}

int64_t sys_prlimit64(SyscallArgs& a) {
    if (target(a.a[0]) == nullptr) return -ESRCH;
    uint64_t current[2];
    if (int64_t r = limit_of(static_cast<int>(a.a[1]), current); r < 0) return r;
    if (a.a[3] != 0 && copy_to_user(a.a[3], current, sizeof(current)) != 0) return -EFAULT;
    return 0;  // new limits are accepted and have no effect
}

int64_t sys_getrlimit(SyscallArgs& a) {
    uint64_t current[2];
    if (int64_t r = limit_of(static_cast<int>(a.a[0]), current); r < 0) return r;
    return copy_to_user(a.a[1], current, sizeof(current));
}

int64_t sys_getrandom(SyscallArgs& a) {
    const size_t size = min<uint64_t>(a.a[1], 1 << 25);
    uint8_t chunk[256];
    for (size_t done = 0; done < size;) {
        const size_t n = min(size - done, sizeof(chunk));
        fs::random_bytes(chunk, n);
        if (copy_to_user(a.a[0] + done, chunk, n) != 0) return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
        done += n;
    }
    return static_cast<int64_t>(size);
}

int64_t sys_arch_prctl(SyscallArgs& a) {
    constexpr uint64_t kSetFs = 0x1002, kGetFs = 0x1003, kSetGs = 0x1001, kGetGs = 0x1004;
    sched::Thread& self = sched::current();
    switch (a.a[0]) {
        case kSetFs:
            if (a.a[1] >= mm::kUserEnd) return -EPERM;
            self.fs_base = a.a[1];
            platform::current().set_fs_base(a.a[1]);
            return 0;
        case kGetFs: return put_user(a.a[1], self.fs_base);
        case kSetGs: return -EINVAL;  // GS belongs to nobody here; no libc uses it on x86-64
        case kGetGs: return put_user(a.a[1], uint64_t{0});
        default: return -EINVAL;
    }
}

int64_t sys_set_tid_address(SyscallArgs& a) {
    current_info()->clear_child_tid = a.a[0];
    return sched::current().tid;
}

int64_t sys_set_robust_list(SyscallArgs& a) {
    if (a.a[1] != 24) return -EINVAL;  // sizeof(struct robust_list_head)
    current_info()->robust_list = a.a[0];
    current_info()->robust_list_size = a.a[1];
    return 0;
}

int64_t sys_get_robust_list(SyscallArgs& a) {
    if (put_user(a.a[1], current_info()->robust_list) != 0) return -EFAULT;
    return put_user(a.a[2], current_info()->robust_list_size);
}

// rseq: one CPU, so the registered area says CPU 0 and no critical section is ever aborted.
int64_t sys_rseq(SyscallArgs& a) {
    constexpr uint64_t kUnregister = 1;
    ThreadInfo* info = current_info();
    if (a.a[2] & kUnregister) {
        if (info->rseq != a.a[0]) return -EINVAL;
        info->rseq = 0;
        return 0;
    }
    if (a.a[1] < 32 || a.a[0] % 32 != 0) return -EINVAL;
    if (info->rseq != 0) return info->rseq == a.a[0] ? -EBUSY : -EINVAL;
    const uint32_t cpu_ids[2] = {0, 0};  // cpu_id_start, cpu_id
    if (copy_to_user(a.a[0], cpu_ids, sizeof(cpu_ids)) != 0) return -EFAULT;
    info->rseq = a.a[0];
    return 0;
}

int64_t sys_sched_getaffinity(SyscallArgs& a) {
    if (a.a[1] < 8) return -EINVAL;
    const uint64_t mask = 1;  // one vCPU
    if (copy_to_user(a.a[2], &mask, 8) != 0) return -EFAULT;
    return 8;
}

int64_t sys_sched_yield(SyscallArgs&) {
    sched::yield();
    return 0;
}

int64_t sys_getcwd(SyscallArgs& a) {
    const String& cwd = process().cwd_path;
    if (a.a[1] < cwd.size() + 1) return -ERANGE;
    if (copy_to_user(a.a[0], cwd.c_str(), cwd.size() + 1) != 0) return -EFAULT;
    return static_cast<int64_t>(cwd.size() + 1);
}

int64_t sys_umask(SyscallArgs& a) {
    const uint32_t old = process().umask;
    process().umask = static_cast<uint32_t>(a.a[0]) & 0777;
    return old;
}

int64_t sys_sysinfo(SyscallArgs& a) {
    // struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram, totalswap,
    // freeswap, procs (u16), pad, totalhigh, freehigh, mem_unit (u32).
    uint8_t info[112] = {};
    const int64_t uptime = static_cast<int64_t>(time::now_ns() / 1000000000);
    const uint64_t total = mm::page_allocator().total_pages() * 4096;
    const uint64_t free = mm::page_allocator().free_pages() * 4096;
    const uint16_t procs = static_cast<uint16_t>(sched::thread_count());
    const uint32_t unit = 1;
    memcpy(info, &uptime, 8);
    memcpy(info + 32, &total, 8);
    memcpy(info + 40, &free, 8);
    memcpy(info + 80, &procs, 2);
    memcpy(info + 104, &unit, 4);
    return copy_to_user(a.a[0], info, sizeof(info));
}

int64_t sys_prctl(SyscallArgs& a) {
    constexpr uint64_t kSetName = 15, kGetName = 16;
    if (a.a[0] == kSetName) return 0;
    if (a.a[0] == kGetName) return copy_to_user(a.a[1], "kiln-app", 9);
    return -EINVAL;
}

int64_t sys_getrusage(SyscallArgs& a) {
    uint8_t usage[144] = {};
    const uint64_t ns = time::now_ns();
    const int64_t tv[2] = {static_cast<int64_t>(ns / 1000000000), static_cast<int64_t>(ns % 1000000000 / 1000)};
    memcpy(usage, tv, sizeof(tv));  // all time counts as user time
    return copy_to_user(a.a[1], usage, sizeof(usage));
}

}  // namespace

void register_process_syscalls(SyscallHandler* t) {
    t[60] = sys_exit;
    t[231] = sys_exit_group;
    t[39] = sys_getpid;
    t[110] = sys_getppid;
    t[186] = sys_gettid;
    t[121] = sys_getpgid;
    t[111] = sys_getpgrp;
    t[124] = sys_getsid;
    t[109] = sys_setpgid;
    t[112] = sys_setsid;
    t[63] = sys_uname;
    t[302] = sys_prlimit64;
    t[97] = sys_getrlimit;
    t[160] = sys_zero;  // partial: limits accepted, not enforced
    t[318] = sys_getrandom;
    t[158] = sys_arch_prctl;
    t[218] = sys_set_tid_address;
    t[273] = sys_set_robust_list;
    t[274] = sys_get_robust_list;
    t[334] = sys_rseq;
    t[204] = sys_sched_getaffinity;
    t[203] = sys_zero;  // partial: one CPU, any mask accepted
    t[24] = sys_sched_yield;
    t[79] = sys_getcwd;
    t[95] = sys_umask;
    t[99] = sys_sysinfo;
    t[157] = sys_prctl;
    t[98] = sys_getrusage;
}

}  // namespace kiln::linux
