// The local APIC: its timer (the kernel's only clock event) and end-of-interrupt.
//
// x2APIC through MSRs where CPUID offers it (KVM's in-kernel LAPIC, PVM), else xAPIC through MMIO
// (QEMU TCG). TSC-deadline mode where offered, so arming the timer is one MSR write and needs no
// calibration; else one-shot mode, calibrated once against the TSC.
#pragma once

#include <stdint.h>

namespace kiln::lapic {

void init(uint64_t tsc_khz);
// Fires the timer interrupt when the TSC reaches `deadline_tsc` (at once if it is past).
void arm(uint64_t deadline_tsc);
void disarm();
void end_of_interrupt();
const char* description();

}  // namespace kiln::lapic
