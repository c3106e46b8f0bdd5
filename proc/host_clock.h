// What the proc kernel needs to know of the host's clocks, which kiln-vmm learns from KVM: the
// TSC's frequency (the kernel reads the TSC itself, with rdtsc, which a process may run) and the
// wall-clock time at TSC zero.
#pragma once

#include <cstdint>

namespace kiln::proc {

struct HostClock {
    uint64_t tsc_khz;
    uint64_t epoch_ns;  // CLOCK_REALTIME when the TSC read 0
};

// Takes the first reading of the TSC's rate measurement, whose window is then the time until
// read_host_clock(): called first thing, a start's own work spares a busy wait later.
void start_measuring_host_clock();

// Throws VmmError if the frequency cannot be found. The frequency is measured at the first call
// only.
HostClock read_host_clock();

}  // namespace kiln::proc
