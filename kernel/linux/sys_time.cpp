// Clocks and sleeping. The TSC is the clock (time/clock.h); the vDSO (kernel/vdso/) reads it
// in user mode, so these calls come only from programs that bypass it.
#include "core/errno.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kNsPerSecond = 1000000000;
enum Clock : uint64_t {
    kRealtime = 0,
    kMonotonic = 1,
    kProcessCpu = 2,
    kThreadCpu = 3,
    kMonotonicRaw = 4,
    kRealtimeCoarse = 5,
    kMonotonicCoarse = 6,
    kBoottime = 7
};

int64_t clock_now(uint64_t clock, uint64_t& ns) {
    switch (clock) {
        case kRealtime:
        case kRealtimeCoarse: ns = time::realtime_ns(); return 0;
        // CPU time is not accounted per thread yet: the monotonic clock stands in for it.
        case kMonotonic:
        case kMonotonicRaw:
        case kMonotonicCoarse:
        case kBoottime:
        case kProcessCpu:
        case kThreadCpu: ns = time::now_ns(); return 0;
        default: return -EINVAL;
    }
}

int64_t put_timespec(uint64_t user, uint64_t ns) {
    const int64_t ts[2] = {static_cast<int64_t>(ns / kNsPerSecond), static_cast<int64_t>(ns % kNsPerSecond)};
    return copy_to_user(user, ts, sizeof(ts));
}

int64_t get_timespec(uint64_t user, uint64_t& ns) {
    int64_t ts[2];
    if (copy_from_user(ts, user, sizeof(ts)) != 0) return -EFAULT;
    if (ts[0] < 0 || ts[1] < 0 || ts[1] >= static_cast<int64_t>(kNsPerSecond)) return -EINVAL;
    const uint64_t seconds = min<uint64_t>(static_cast<uint64_t>(ts[0]), 1ull << 33);  // centuries: enough
    ns = seconds * kNsPerSecond + static_cast<uint64_t>(ts[1]);
    return 0;
}

int64_t sys_clock_gettime(SyscallArgs& a) {
    uint64_t ns;
    if (int64_t r = clock_now(a.a[0], ns); r < 0) return r;
    return put_timespec(a.a[1], ns);
}

int64_t sys_clock_getres(SyscallArgs& a) {
    uint64_t ignored;
    if (int64_t r = clock_now(a.a[0], ignored); r < 0) return r;
    return a.a[1] ? put_timespec(a.a[1], 1) : 0;
}

int64_t sys_gettimeofday(SyscallArgs& a) {
    if (a.a[0] == 0) return 0;
    const uint64_t ns = time::realtime_ns();
    const int64_t tv[2] = {static_cast<int64_t>(ns / kNsPerSecond), static_cast<int64_t>(ns % kNsPerSecond / 1000)};
    return copy_to_user(a.a[0], tv, sizeof(tv));
}

int64_t sys_time(SyscallArgs& a) {
    const int64_t seconds = static_cast<int64_t>(time::realtime_ns() / kNsPerSecond);
    if (a.a[0] && copy_to_user(a.a[0], &seconds, 8) != 0) return -EFAULT;
    return seconds;
}

// Sleeps until the monotonic `deadline`; a signal ends the sleep early with EINTR and the time
// left in `remain` (relative sleeps only).
int64_t sleep_until(uint64_t deadline, uint64_t remain) {
    sched::WaitQueue nobody;
    for (;;) {
        const sched::WakeReason why = sched::wait(nobody, deadline, true);
        if (why == sched::WakeReason::kTimeout || time::now_ns() >= deadline) return 0;
        if (why == sched::WakeReason::kInterrupted) {
            if (remain) put_timespec(remain, deadline - time::now_ns());
            return -EINTR;
        }
    }
}

int64_t sys_nanosleep(SyscallArgs& a) {
    uint64_t ns;
    if (int64_t r = get_timespec(a.a[0], ns); r < 0) return r;
    return sleep_until(time::now_ns() + ns, a.a[1]);
}

int64_t sys_clock_nanosleep(SyscallArgs& a) {
    constexpr uint64_t kAbsolute = 1;
    uint64_t ns, now;
    if (int64_t r = clock_now(a.a[0], now); r < 0) return r;
    if (int64_t r = get_timespec(a.a[2], ns); r < 0) return r;
    if (!(a.a[1] & kAbsolute)) return sleep_until(time::now_ns() + ns, a.a[3]);
    // An absolute deadline on this clock, converted to the monotonic one.
    const uint64_t delta = ns > now ? ns - now : 0;
    return sleep_until(time::now_ns() + delta, 0);
}

// pause(2): waits for a signal, with no deadline. The handler runs on the way out, as Linux does.
int64_t sys_pause(SyscallArgs&) {
    sched::WaitQueue nobody;
    while (sched::wait(nobody, 0, true) != sched::WakeReason::kInterrupted) {
    }
    return -EINTR;
}

}  // namespace

void register_time_syscalls(SyscallHandler* t) {
    t[228] = sys_clock_gettime;  // partial: the CPU-time clocks read the monotonic clock
    t[229] = sys_clock_getres;
    t[230] = sys_clock_nanosleep;
    t[35] = sys_nanosleep;
    t[34] = sys_pause;
    t[96] = sys_gettimeofday;
    t[201] = sys_time;
}

}  // namespace kiln::linux
