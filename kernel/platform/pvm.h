// The `pvm` backend: the PVM hypervisor's native mode (research/pvm.md, "Native mode follow-up").
//
// boot.S registered `pvm_vif_page` with MSR 0x4b564d10, which put the vCPU into native mode. The
// host reads the virtual interrupt flag from byte 0 of that page; `cli`/`sti` are emulated (~3.7 us)
// and change nothing, so the interrupt flag here is a plain store (0.24 ns).
#pragma once

#include "platform/platform.h"

namespace kiln::platform {

// Layout of the registered page, from the host's BTF (`struct pvm_vif`).
struct PvmVif {
    volatile uint8_t interrupts_enabled;
    volatile uint8_t pending;  // never seen written by the host (pvm.md: protocol unknown)
    uint8_t pad[6];
    volatile uint64_t cr2;
};

class PvmBackend final : public Backend {
  public:
    const char* name() const override { return "pvm"; }
    Kind kind() const override { return Kind::kPvm; }
    void irq_disable() override;
    void irq_enable() override;
    bool irq_enabled() const override;
    void wait_for_interrupt() override;
    uint64_t enable_user_features(bool xsave, uint64_t xcr0, bool fsgsbase) override;
    bool kernel_pages_supervisor_only() const override { return false; }
};

}  // namespace kiln::platform
