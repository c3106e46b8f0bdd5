#include "arch/x86_64/ioapic.h"

#include "mm/layout.h"

namespace kiln::ioapic {
namespace {

constexpr uint64_t kIoapicPhys = 0xfec00000;

void write(uint32_t reg, uint32_t value) {
    auto* base = static_cast<volatile uint32_t*>(mm::phys_to_virt(kIoapicPhys));
    base[0] = reg;    // IOREGSEL
    base[4] = value;  // IOWIN at +0x10
}

}  // namespace

void route(uint32_t irq, uint8_t vector) {
    // Redirection entry: vector, fixed delivery, physical destination 0, high, edge, unmasked.
    write(0x10 + 2 * irq + 1, 0);  // destination APIC ID 0
    write(0x10 + 2 * irq, vector);
}

}  // namespace kiln::ioapic
