#include "platform/pvm.h"

#include "arch/x86_64/cpu.h"

extern "C" char pvm_vif_page[];

namespace kiln::platform {
namespace {

PvmVif& vif() { return *reinterpret_cast<PvmVif*>(pvm_vif_page); }

}  // namespace

void PvmBackend::irq_disable() {
    vif().interrupts_enabled = 0;
    asm volatile("" ::: "memory");
}

void PvmBackend::irq_enable() {
    asm volatile("" ::: "memory");
    vif().interrupts_enabled = 1;
}

bool PvmBackend::irq_enabled() const { return vif().interrupts_enabled != 0; }

// `hlt` is handled inside KVM when the in-kernel irqchip exists; with the flag set first, the host
// delivers a pending interrupt instead of halting.
void PvmBackend::wait_for_interrupt() {
    irq_enable();
    cpu::privileged::hlt();
}

// The guest runs with the host's XCR0 (0xe7 measured) whatever it asks for (pvm.md, recipe 6):
// keep CR4 consistent for the CPU model and read XCR0 back instead of setting it.
uint64_t PvmBackend::enable_user_features(bool xsave, uint64_t xcr0, bool fsgsbase) {
    Backend::enable_user_features(false, xcr0, fsgsbase);
    if (!xsave) return 0;
    uint32_t lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace kiln::platform
