// Who the process is and how it is scheduled: user and group ids (Linux's rules, with euid 0 as
// the one privilege), priorities and policies, the host's names, and the calls that ask about
// children (there are none: Kiln runs one process).
#include "core/errno.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "time/clock.h"

namespace kiln::linux {
namespace {

constexpr uint32_t kUnchanged = ~0u;  // -1: leave this id as it is
constexpr size_t kGroupsMax = 65536;  // NGROUPS_MAX

Credentials& credentials() { return process().credentials; }
bool privileged() { return credentials().euid == 0; }

uint32_t id_argument(uint64_t value) { return static_cast<uint32_t>(value); }

// The real, effective and saved ids of one kind (user or group), changed as setresuid does:
// privileged, to anything; else each to one of the three it has.
struct IdSet {
    uint32_t& real;
    uint32_t& effective;
    uint32_t& saved;
    uint32_t& filesystem;

    bool held(uint32_t id) const { return id == real || id == effective || id == saved; }

    int64_t set_res(uint32_t r, uint32_t e, uint32_t s) {
        const uint32_t wanted[] = {r, e, s};
        if (!privileged())
            for (uint32_t id : wanted)
                if (id != kUnchanged && !held(id)) return -EPERM;
        if (r != kUnchanged) real = r;
        if (e != kUnchanged) effective = e;
        if (s != kUnchanged) saved = s;
        filesystem = effective;
        return 0;
    }

    // setreuid: the real id may become the effective one; the saved id follows the new effective
    // id when the real id is set or the effective one moves away from the real.
    int64_t set_re(uint32_t r, uint32_t e) {
        if (!privileged()) {
            if (r != kUnchanged && r != real && r != effective) return -EPERM;
            if (e != kUnchanged && !held(e)) return -EPERM;
        }
        const uint32_t old_real = real;
        if (r != kUnchanged) real = r;
        if (e != kUnchanged) effective = e;
        if (r != kUnchanged || (e != kUnchanged && e != old_real)) saved = effective;
        filesystem = effective;
        return 0;
    }

    // setuid: privileged, all three; else the effective id only, to the real or saved one.
    int64_t set(uint32_t id) {
        if (id == kUnchanged) return -EINVAL;
        if (privileged()) return set_res(id, id, id);
        if (id != real && id != saved) return -EPERM;
        effective = filesystem = id;
        return 0;
    }

    // setfsuid: the old value, whether or not the new one was allowed.
    int64_t set_filesystem(uint32_t id) {
        const uint32_t old = filesystem;
        if (id != kUnchanged && (privileged() || held(id) || id == filesystem)) filesystem = id;
        return old;
    }

    int64_t get_res(uint64_t r, uint64_t e, uint64_t s) const {
        if (put_user(r, real) != 0 || put_user(e, effective) != 0 || put_user(s, saved) != 0) return -EFAULT;
        return 0;
    }
};

IdSet users() {
    auto& c = credentials();
    return {c.uid, c.euid, c.suid, c.fsuid};
}
IdSet groups() {
    auto& c = credentials();
    return {c.gid, c.egid, c.sgid, c.fsgid};
}

int64_t sys_getuid(SyscallArgs&) { return credentials().uid; }
int64_t sys_geteuid(SyscallArgs&) { return credentials().euid; }
int64_t sys_getgid(SyscallArgs&) { return credentials().gid; }
int64_t sys_getegid(SyscallArgs&) { return credentials().egid; }
int64_t sys_setuid(SyscallArgs& a) { return users().set(id_argument(a.a[0])); }
int64_t sys_setgid(SyscallArgs& a) { return groups().set(id_argument(a.a[0])); }
int64_t sys_setreuid(SyscallArgs& a) { return users().set_re(id_argument(a.a[0]), id_argument(a.a[1])); }
int64_t sys_setregid(SyscallArgs& a) { return groups().set_re(id_argument(a.a[0]), id_argument(a.a[1])); }
int64_t sys_setresuid(SyscallArgs& a) {
    return users().set_res(id_argument(a.a[0]), id_argument(a.a[1]), id_argument(a.a[2]));
}
int64_t sys_setresgid(SyscallArgs& a) {
    return groups().set_res(id_argument(a.a[0]), id_argument(a.a[1]), id_argument(a.a[2]));
}
int64_t sys_getresuid(SyscallArgs& a) { return users().get_res(a.a[0], a.a[1], a.a[2]); }
int64_t sys_getresgid(SyscallArgs& a) { return groups().get_res(a.a[0], a.a[1], a.a[2]); }
int64_t sys_setfsuid(SyscallArgs& a) { return users().set_filesystem(id_argument(a.a[0])); }
int64_t sys_setfsgid(SyscallArgs& a) { return groups().set_filesystem(id_argument(a.a[0])); }

int64_t sys_getgroups(SyscallArgs& a) {
    const auto& list = credentials().groups;
    const int64_t size = static_cast<int32_t>(a.a[0]);
    if (size < 0) return -EINVAL;
    if (size == 0) return static_cast<int64_t>(list.size());
    if (static_cast<size_t>(size) < list.size()) return -EINVAL;
    for (size_t i = 0; i < list.size(); ++i)
        if (put_user(a.a[1] + i * 4, list[i]) != 0) return -EFAULT;
    return static_cast<int64_t>(list.size());
}

int64_t sys_setgroups(SyscallArgs& a) {
    if (!privileged()) return -EPERM;
    const uint64_t size = a.a[0];
    if (size > kGroupsMax) return -EINVAL;
    Vector<uint32_t> list;
    for (uint64_t i = 0; i < size; ++i) {
        uint32_t id;
        if (copy_from_user(&id, a.a[1] + i * 4, 4) != 0) return -EFAULT;
        if (!list.push_back(id)) return -ENOMEM;
    }
    credentials().groups = move(list);
    return 0;
}

// Scheduling. Kiln's scheduler is round robin with one 10 ms slice for every thread: the normal
// policies are accepted and reported; the real-time ones it cannot honour are refused as they
// are to an unprivileged Linux process.
enum Policy : int { kOther = 0, kFifo = 1, kRoundRobin = 2, kBatch = 3, kIdle = 5 };
constexpr uint64_t kSliceNs = 10'000'000;

bool is_self(uint64_t pid) {
    const auto p = static_cast<int32_t>(pid);
    if (p == 0 || p == process().pid) return true;
    for (ThreadInfo* info : process().threads)
        if (info->thread && static_cast<int32_t>(info->thread->tid) == p) return true;
    return false;
}

int64_t check_target(uint64_t pid) {
    if (static_cast<int32_t>(pid) < 0) return -EINVAL;
    return is_self(pid) ? 0 : -ESRCH;
}

int64_t sys_sched_getscheduler(SyscallArgs& a) {
    if (int64_t r = check_target(a.a[0]); r < 0) return r;
    return process().policy;
}

int64_t sys_sched_setscheduler(SyscallArgs& a) {
    if (int64_t r = check_target(a.a[0]); r < 0) return r;
    const int policy = static_cast<int>(a.a[1] & ~0x40000000ull);  // without SCHED_RESET_ON_FORK
    int32_t priority;
    if (copy_from_user(&priority, a.a[2], 4) != 0) return -EFAULT;
    if (policy == kFifo || policy == kRoundRobin) return priority < 1 || priority > 99 ? -EINVAL : -EPERM;
    if (policy != kOther && policy != kBatch && policy != kIdle) return -EINVAL;
    if (priority != 0) return -EINVAL;
    process().policy = policy;
    return 0;
}

int64_t sys_sched_getparam(SyscallArgs& a) {
    if (int64_t r = check_target(a.a[0]); r < 0) return r;
    return put_user(a.a[1], int32_t{0});
}

int64_t sys_sched_setparam(SyscallArgs& a) {
    if (int64_t r = check_target(a.a[0]); r < 0) return r;
    int32_t priority;
    if (copy_from_user(&priority, a.a[1], 4) != 0) return -EFAULT;
    return priority == 0 ? 0 : -EINVAL;
}

int64_t priority_bound(uint64_t policy, bool maximum) {
    switch (static_cast<int>(policy)) {
        case kFifo:
        case kRoundRobin: return maximum ? 99 : 1;
        case kOther:
        case kBatch:
        case kIdle: return 0;
        default: return -EINVAL;
    }
}
int64_t sys_sched_get_priority_max(SyscallArgs& a) { return priority_bound(a.a[0], true); }
int64_t sys_sched_get_priority_min(SyscallArgs& a) { return priority_bound(a.a[0], false); }

int64_t sys_sched_rr_get_interval(SyscallArgs& a) {
    if (int64_t r = check_target(a.a[0]); r < 0) return r;
    const int64_t ts[2] = {0, static_cast<int64_t>(kSliceNs)};
    return copy_to_user(a.a[1], ts, sizeof(ts));
}

// getpriority and setpriority: PRIO_PROCESS of this process (PRIO_PGRP and PRIO_USER name it
// too: its group, its user). The raw call returns 20 - nice.
int64_t check_priority_target(uint64_t which, uint64_t who) {
    if (which > 2) return -EINVAL;
    if (which == 2)
        return static_cast<uint32_t>(who) == 0 || static_cast<uint32_t>(who) == credentials().uid ? 0 : -ESRCH;
    return is_self(who) ? 0 : -ESRCH;
}

int64_t sys_getpriority(SyscallArgs& a) {
    if (int64_t r = check_priority_target(a.a[0], a.a[1]); r < 0) return r;
    return 20 - process().nice;
}

int64_t sys_setpriority(SyscallArgs& a) {
    if (int64_t r = check_priority_target(a.a[0], a.a[1]); r < 0) return r;
    const int nice = max(-20, min(19, static_cast<int32_t>(a.a[2])));
    if (nice < process().nice && !privileged()) return -EACCES;
    process().nice = nice;
    return 0;
}

// One CPU, one NUMA node.
int64_t sys_getcpu(SyscallArgs& a) {
    if (a.a[0] != 0 && put_user(a.a[0], uint32_t{0}) != 0) return -EFAULT;
    if (a.a[1] != 0 && put_user(a.a[1], uint32_t{0}) != 0) return -EFAULT;
    return 0;
}

// Only Linux's own personality (PER_LINUX); 0xffffffff asks without changing it.
int64_t sys_personality(SyscallArgs& a) {
    const auto persona = static_cast<uint32_t>(a.a[0]);
    return persona == 0 || persona == 0xffffffff ? 0 : -EINVAL;
}

// On one CPU every thread already sees every other's stores in program order once it runs
// again, so each barrier is complete when asked for. QUERY lists them.
int64_t sys_membarrier(SyscallArgs& a) {
    constexpr uint64_t kQuery = 0, kGlobal = 1, kGlobalExpedited = 2, kRegisterGlobalExpedited = 4,
                       kPrivateExpedited = 8, kRegisterPrivateExpedited = 16;
    constexpr uint64_t kSupported =
        kGlobal | kGlobalExpedited | kRegisterGlobalExpedited | kPrivateExpedited | kRegisterPrivateExpedited;
    if (a.a[1] != 0) return -EINVAL;
    if (a.a[0] == kQuery) return kSupported;
    const uint64_t command = a.a[0];
    const bool one_command = command != 0 && (command & (command - 1)) == 0;
    if (!one_command || (command & kSupported) != command) return -EINVAL;
    // As on Linux, the private expedited barrier needs the process to register for it first.
    static bool registered_private = false;
    if (command == kRegisterPrivateExpedited) registered_private = true;
    return command == kPrivateExpedited && !registered_private ? -EPERM : 0;
}

int64_t set_name(char (&field)[65], uint64_t user, uint64_t size) {
    if (!privileged()) return -EPERM;
    if (size > 64) return -EINVAL;
    char name[65] = {};
    if (copy_from_user(name, user, size) != 0) return -EFAULT;
    memcpy(field, name, sizeof(field));
    return 0;
}
int64_t sys_sethostname(SyscallArgs& a) { return set_name(process().hostname, a.a[0], a.a[1]); }
int64_t sys_setdomainname(SyscallArgs& a) { return set_name(process().domainname, a.a[0], a.a[1]); }

// times: clock ticks (100 a second) since boot. CPU time is not accounted per thread yet: all of
// it counts as the process's user time, as clock_gettime's CPU clocks count it.
int64_t sys_times(SyscallArgs& a) {
    const auto ticks = static_cast<int64_t>(time::now_ns() / 10'000'000);
    if (a.a[0] != 0) {
        const int64_t tms[4] = {ticks, 0, 0, 0};
        if (copy_to_user(a.a[0], tms, sizeof(tms)) != 0) return -EFAULT;
    }
    return ticks;
}

}  // namespace

void register_identity_syscalls(SyscallHandler* t) {
    t[102] = sys_getuid;
    t[104] = sys_getgid;
    t[107] = sys_geteuid;
    t[108] = sys_getegid;
    t[105] = sys_setuid;
    t[106] = sys_setgid;
    t[113] = sys_setreuid;
    t[114] = sys_setregid;
    t[115] = sys_getgroups;
    t[116] = sys_setgroups;
    t[117] = sys_setresuid;
    t[118] = sys_getresuid;
    t[119] = sys_setresgid;
    t[120] = sys_getresgid;
    t[122] = sys_setfsuid;
    t[123] = sys_setfsgid;
    t[140] = sys_getpriority;
    t[141] = sys_setpriority;
    t[142] = sys_sched_setparam;
    t[143] = sys_sched_getparam;
    t[144] = sys_sched_setscheduler;  // partial: real-time policies refused (EPERM)
    t[145] = sys_sched_getscheduler;
    t[146] = sys_sched_get_priority_max;
    t[147] = sys_sched_get_priority_min;
    t[148] = sys_sched_rr_get_interval;
    t[309] = sys_getcpu;
    t[135] = sys_personality;
    t[324] = sys_membarrier;
    t[170] = sys_sethostname;
    t[171] = sys_setdomainname;
    t[100] = sys_times;  // partial: all CPU time counts as user time
}

}  // namespace kiln::linux
