// Kiln's vDSO: clock_gettime, gettimeofday, time, getcpu and clock_getres without a system call,
// for glibc, musl and Go, which look these up by name and version (LINUX_2.6) in the image the
// auxiliary vector's AT_SYSINFO_EHDR points at. The clock is the kernel's: the TSC, scaled with
// the parameters the kernel publishes in the page just below this image (vdso_data.h). Clocks it
// does not keep (CPU time) go to the kernel with a real system call.
//
// Built as its own small shared object (vdso.lds), freestanding, and embedded in the kernel
// (image.S). No data, no relocations: it runs wherever it is mapped.
#include <stdint.h>

#include "vdso/vdso_data.h"

extern "C" const kiln::vdso::Data vdso_data;  // vdso.lds: the page before the image

namespace {

constexpr uint64_t kNsPerSecond = 1000000000;
constexpr long kSysClockGettime = 228, kSysClockGetres = 229;
enum : int {
    kRealtime = 0,
    kMonotonic = 1,
    kMonotonicRaw = 4,
    kRealtimeCoarse = 5,
    kMonotonicCoarse = 6,
    kBoottime = 7
};

struct Timespec {
    int64_t sec;
    int64_t nsec;
};
struct Timeval {
    int64_t sec;
    int64_t usec;
};

// Ordered after the loads before it (the sequence count), as Linux's rdtsc_ordered: a TSC read
// the CPU ran early could pair with parameters read later.
inline uint64_t rdtsc() {
    uint32_t low, high;
    asm volatile("lfence; rdtsc" : "=a"(low), "=d"(high)::"memory");
    return (static_cast<uint64_t>(high) << 32) | low;
}

inline void barrier() { asm volatile("" ::: "memory"); }

long system_call(long number, long a, long b) {
    long result;
    asm volatile("syscall" : "=a"(result) : "0"(number), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return result;
}

// Realtime if `realtime`, else monotonic, in ns, as time/clock.cpp computes them.
uint64_t now_ns(bool realtime) {
    const volatile kiln::vdso::Data& d = vdso_data;
    for (;;) {
        const uint32_t seq = d.seq;
        barrier();
        const uint64_t tsc = rdtsc();
        const uint64_t ticks = realtime ? tsc : tsc - d.boot_tsc;
        const uint64_t ns = static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * d.ns_mult) >> 32);
        const uint64_t result = realtime ? d.epoch_ns + ns : ns;
        barrier();
        if ((seq & 1) == 0 && d.seq == seq) return result;
    }
}

// The clocks this image keeps; -1 for the others.
int kind(int clock) {
    switch (clock) {
        case kRealtime:
        case kRealtimeCoarse: return 1;
        case kMonotonic:
        case kMonotonicRaw:
        case kMonotonicCoarse:
        case kBoottime: return 0;
        default: return -1;
    }
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int __vdso_clock_gettime(int clock, Timespec* ts) {
    const int k = kind(clock);
    if (k < 0) return static_cast<int>(system_call(kSysClockGettime, clock, reinterpret_cast<long>(ts)));
    const uint64_t ns = now_ns(k == 1);
    ts->sec = static_cast<int64_t>(ns / kNsPerSecond);
    ts->nsec = static_cast<int64_t>(ns % kNsPerSecond);
    return 0;
}

__attribute__((visibility("default"))) int __vdso_gettimeofday(Timeval* tv, void* tz) {
    if (tv != nullptr) {
        const uint64_t ns = now_ns(true);
        tv->sec = static_cast<int64_t>(ns / kNsPerSecond);
        tv->usec = static_cast<int64_t>(ns % kNsPerSecond / 1000);
    }
    if (tz != nullptr) static_cast<int32_t*>(tz)[0] = static_cast<int32_t*>(tz)[1] = 0;  // UTC, no DST
    return 0;
}

__attribute__((visibility("default"))) int64_t __vdso_time(int64_t* t) {
    const auto seconds = static_cast<int64_t>(now_ns(true) / kNsPerSecond);
    if (t != nullptr) *t = seconds;
    return seconds;
}

// One CPU, one node.
__attribute__((visibility("default"))) int __vdso_getcpu(unsigned* cpu, unsigned* node, void*) {
    if (cpu != nullptr) *cpu = 0;
    if (node != nullptr) *node = 0;
    return 0;
}

__attribute__((visibility("default"))) int __vdso_clock_getres(int clock, Timespec* res) {
    if (kind(clock) < 0) return static_cast<int>(system_call(kSysClockGetres, clock, reinterpret_cast<long>(res)));
    if (res != nullptr) *res = {0, 1};  // the kernel's answer: the TSC counts in less than a ns
    return 0;
}

int clock_gettime(int, Timespec*) __attribute__((weak, alias("__vdso_clock_gettime"), visibility("default")));
int gettimeofday(Timeval*, void*) __attribute__((weak, alias("__vdso_gettimeofday"), visibility("default")));
int64_t time(int64_t*) __attribute__((weak, alias("__vdso_time"), visibility("default")));
int getcpu(unsigned*, unsigned*, void*) __attribute__((weak, alias("__vdso_getcpu"), visibility("default")));
int clock_getres(int, Timespec*) __attribute__((weak, alias("__vdso_clock_getres"), visibility("default")));

}  // extern "C"
