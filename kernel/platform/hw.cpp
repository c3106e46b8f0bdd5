#include "platform/hw.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/lapic.h"
#include "arch/x86_64/layout.h"

namespace kiln::platform {

using namespace cpu::privileged;

void HwBackend::irq_disable() { cli(); }
void HwBackend::irq_enable() { sti(); }
bool HwBackend::irq_enabled() const { return (read_rflags() & (1u << 9)) != 0; }
// `sti` delays interrupts by one instruction, so no interrupt slips in between it and `hlt`.
void HwBackend::wait_for_interrupt() { sti_hlt(); }

// The defaults of Backend are the plain instructions; PVM overrides what it must.
uint64_t Backend::read_msr(uint32_t msr) { return rdmsr(msr); }
void Backend::write_msr(uint32_t msr, uint64_t value) { wrmsr(msr, value); }
void Backend::load_page_table(uint64_t pml4_phys) { write_cr3(pml4_phys); }
void Backend::flush_tlb_page(uintptr_t va) { invlpg(va); }
uint64_t Backend::fault_address() { return read_cr2(); }
void Backend::out8(uint16_t port, uint8_t value) { outb(port, value); }
void Backend::out32(uint16_t port, uint32_t value) { outl(port, value); }
uint8_t Backend::in8(uint16_t port) { return inb(port); }

namespace {
constinit bool use_wrfsbase = false;
constexpr uint32_t kMsrFsBase = 0xc0000100;
}  // namespace

uint64_t Backend::enable_user_features(bool xsave, uint64_t xcr0, bool fsgsbase) {
    constexpr uint64_t kOsfxsr = 1 << 9, kOsxmmexcpt = 1 << 10, kFsgsbase = 1 << 16, kOsxsave = 1 << 18;
    constexpr uint64_t kCr0Em = 1 << 2, kCr0Ts = 1 << 3, kCr0Mp = 1 << 1;
    uint64_t cr4 = read_cr4() | kOsfxsr | kOsxmmexcpt;
    if (xsave) cr4 |= kOsxsave;
    if (fsgsbase) cr4 |= kFsgsbase;
    if (cr4 != read_cr4()) write_cr4(cr4);
    const uint64_t cr0 = (read_cr0() & ~(kCr0Em | kCr0Ts)) | kCr0Mp;
    if (cr0 != read_cr0()) write_cr0(cr0);
    use_wrfsbase = fsgsbase;
    if (!xsave) return 0;
    asm volatile("xsetbv" : : "c"(0), "a"(static_cast<uint32_t>(xcr0)), "d"(static_cast<uint32_t>(xcr0 >> 32)));
    return xcr0;
}

void Backend::set_fs_base(uint64_t base) {
    if (use_wrfsbase)
        asm volatile("wrfsbase %0" : : "r"(base) : "memory");
    else
        wrmsr(kMsrFsBase, base);
}

void Backend::load_gdt(const void* base, uint16_t limit) {
    lgdt({limit, reinterpret_cast<uint64_t>(base)});
    // Reload the segment registers from the new table. CS needs a far return.
    asm volatile(
        "pushq %[cs]\n"
        "lea 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1:\n"
        "mov %[ds], %%eax\n"
        "mov %%eax, %%ds\n"
        "mov %%eax, %%es\n"
        "mov %%eax, %%ss\n"
        :
        : [cs] "i"(KILN_SEL_KERNEL_CS), [ds] "i"(KILN_SEL_KERNEL_DS)
        : "rax", "memory");
}
void Backend::load_idt(const void* base, uint16_t limit) { lidt({limit, reinterpret_cast<uint64_t>(base)}); }
void Backend::load_task_register(uint16_t selector) { ltr(selector); }

void Backend::timer_init(uint64_t tsc_khz) { lapic::init(tsc_khz); }
void Backend::timer_arm(uint64_t deadline_tsc) { lapic::arm(deadline_tsc); }
void Backend::timer_disarm() { lapic::disarm(); }
void Backend::end_of_interrupt() { lapic::end_of_interrupt(); }
const char* Backend::timer_description() { return lapic::description(); }

}  // namespace kiln::platform
