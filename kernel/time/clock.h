// Time: the TSC is the clock, the LAPIC timer the only event source.
//
// The TSC frequency comes from kiln-vmm (`kiln.tsc_khz=`), so on kiln-vmm nothing is calibrated;
// under QEMU with KVM from kvmclock; under QEMU TCG from the PIT, once (10 ms).
#pragma once

#include <stdint.h>

#include "lib/cmdline.h"

namespace kiln::time {

struct FrequencySource {
    uint64_t tsc_khz;
    const char* source;  // "monitor" (kiln-vmm, kiln-proc), "kvmclock", "pit", "cpuid"
};

FrequencySource find_tsc_frequency(const Cmdline& cmdline);

void init(uint64_t tsc_khz);
uint64_t tsc_khz();
uint64_t now_ns();  // since init
// Wall-clock time: kiln-vmm's `kiln.epoch_ns` (the host's time when the vCPU's TSC was 0) plus
// the TSC; without it, time since boot.
void set_epoch(uint64_t epoch_ns_at_tsc_zero);
uint64_t realtime_ns();
uint64_t ns_to_ticks(uint64_t ns);

// What the two clocks are made of, for the vDSO to compute them as the kernel does:
// monotonic = ((TSC - boot_tsc) * ns_mult) >> 32, realtime = epoch_ns + ((TSC * ns_mult) >> 32).
struct Parameters {
    uint64_t boot_tsc;
    uint64_t ns_mult;
    uint64_t epoch_ns;
};
Parameters parameters();

// Timer events: one pending deadline, a callback run in interrupt context.
using TimerCallback = void (*)();
void set_timer(uint64_t deadline_ns, TimerCallback callback);
void cancel_timer();

// Waits, with interrupts enabled and the CPU halted, until `ns` have passed.
void sleep_ns(uint64_t ns);

}  // namespace kiln::time
