// The I/O APIC: routes a device's interrupt line (a GSI, as virtio_mmio.device=...:IRQ names it)
// to a vector of the local APIC.
#pragma once

#include <stdint.h>

namespace kiln::ioapic {

// Edge-triggered, active high, to the boot CPU. Vector `kFirstDeviceVector + irq`.
inline constexpr uint8_t kFirstDeviceVector = 0x30;
void route(uint32_t irq, uint8_t vector);

}  // namespace kiln::ioapic
