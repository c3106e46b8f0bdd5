// The `hw` backend: ordinary hardware virtualization (VT-x/AMD-V) and QEMU's TCG.
#pragma once

#include "platform/platform.h"

namespace kiln::platform {

class HwBackend : public Backend {
  public:
    const char* name() const override { return "hw"; }
    Kind kind() const override { return Kind::kHw; }
    void irq_disable() override;
    void irq_enable() override;
    bool irq_enabled() const override;
    void wait_for_interrupt() override;
};

}  // namespace kiln::platform
