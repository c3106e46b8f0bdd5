#include "host_clock.h"

#include <x86intrin.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "util/error.h"

namespace kiln::proc {

using vmm::system_error;
using vmm::VmmError;

namespace {

uint64_t now_ns(clockid_t clock) {
    timespec t{};
    clock_gettime(clock, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

struct ClockSample {
    uint64_t ns = 0, tsc = 0;
};

ClockSample sample() {
    const uint64_t ns = now_ns(CLOCK_MONOTONIC);
    return {ns, __rdtsc()};
}

ClockSample process_start_sample;  // set by start_measuring_host_clock()

// The TSC's rate against CLOCK_MONOTONIC from `from` to at least `window_ns` later.
uint64_t measure_khz(ClockSample from, uint64_t window_ns) {
    uint64_t t1;
    do t1 = now_ns(CLOCK_MONOTONIC);
    while (t1 - from.ns < window_ns);
    const uint64_t c1 = __rdtsc();
    return (c1 - from.tsc) * 1000000 / (t1 - from.ns);
}

// Linux's own figure: on a CPU with a constant TSC and no frequency scaling (every x86 cloud VM,
// this one included: "tsc_known_freq"), /proc/cpuinfo's "cpu MHz" is the kernel's tsc_khz. Only
// the first processor's block is read.
uint64_t cpuinfo_khz() {
    FILE* f = std::fopen("/proc/cpuinfo", "r");
    if (f == nullptr) return 0;
    char line[256];
    double mhz = 0;
    while (std::fgets(line, sizeof(line), f) != nullptr) {
        if (std::strncmp(line, "cpu MHz", 7) == 0) {
            const char* colon = std::strchr(line, ':');
            if (colon != nullptr) mhz = std::strtod(colon + 1, nullptr);
            break;
        }
    }
    std::fclose(f);
    return mhz > 0 ? static_cast<uint64_t>(std::llround(mhz * 1000)) : 0;
}

bool within_2_percent(uint64_t khz, uint64_t measured) {
    return std::llabs(static_cast<long long>(khz) - static_cast<long long>(measured)) * 50 <=
           static_cast<long long>(khz);
}

// A measurement over at least 200 us checks the figure (within 2%): the first window is the
// process's own start since start_measuring_host_clock(), which costs nothing where that was
// long enough; then up to two fresh ones, as a preemption between a window's clock read and its
// TSC read skews one. Where none agrees (a CPU whose "cpu MHz" follows frequency scaling), a
// 20 ms measurement replaces it.
uint64_t find_tsc_khz() {
    constexpr uint64_t kWindowNs = 200000;
    uint64_t khz = cpuinfo_khz();
    bool confirmed = false;
    if (khz != 0 && process_start_sample.ns != 0)
        confirmed = within_2_percent(khz, measure_khz(process_start_sample, kWindowNs));
    for (int attempt = 0; attempt < 2 && khz != 0 && !confirmed; ++attempt)
        confirmed = within_2_percent(khz, measure_khz(sample(), kWindowNs));
    if (!confirmed) khz = measure_khz(sample(), 20000000);
    if (khz == 0) throw VmmError("cannot find the TSC's frequency");
    return khz;
}

}  // namespace

void start_measuring_host_clock() { process_start_sample = sample(); }

HostClock read_host_clock() {
    // Found once per process (a constant TSC keeps its rate for the host's boot): a tender
    // waiting for its orders finds it ahead, and a wake does not spend its 0.3 ms.
    static const uint64_t khz = find_tsc_khz();
    const uint64_t wall = now_ns(CLOCK_REALTIME);
    const uint64_t tsc = __rdtsc();
    // tsc * 1e6 / khz without overflow: whole seconds of ticks first, then the rest.
    const uint64_t ticks_per_s = khz * 1000;
    const uint64_t tsc_ns = tsc / ticks_per_s * 1000000000ull + tsc % ticks_per_s * 1000000 / khz;
    return {khz, wall > tsc_ns ? wall - tsc_ns : 0};
}

}  // namespace kiln::proc
