#include "arch/x86_64/lapic.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "mm/layout.h"
#include "platform/platform.h"

namespace kiln::lapic {
namespace {

// Register offsets in the xAPIC page; the x2APIC MSR is 0x800 + offset / 16.
constexpr uint32_t kTpr = 0x80;
constexpr uint32_t kEoi = 0xb0;
constexpr uint32_t kSpurious = 0xf0;
constexpr uint32_t kLvtTimer = 0x320;
constexpr uint32_t kInitialCount = 0x380;
constexpr uint32_t kCurrentCount = 0x390;
constexpr uint32_t kDivide = 0x3e0;
constexpr uint32_t kLvtLint0 = 0x350;
constexpr uint32_t kLvtLint1 = 0x360;

constexpr uint64_t kApicBaseEnable = 1u << 11;
constexpr uint64_t kApicBaseX2apic = 1u << 10;
constexpr uint32_t kTimerModeTscDeadline = 2u << 17;
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint64_t kXapicPhys = 0xfee00000;

constinit bool x2apic = false;
constinit bool tsc_deadline = false;
constinit bool ready = false;
constinit uint64_t tsc_khz_value = 0;
constinit uint64_t lapic_khz = 0;  // one-shot mode: timer ticks per millisecond

void write(uint32_t reg, uint32_t value) {
    if (x2apic)
        platform::current().write_msr(0x800 + reg / 16, value);
    else
        *reinterpret_cast<volatile uint32_t*>(static_cast<char*>(mm::phys_to_virt(kXapicPhys)) + reg) = value;
}

uint32_t read(uint32_t reg) {
    if (x2apic) return static_cast<uint32_t>(platform::current().read_msr(0x800 + reg / 16));
    return *reinterpret_cast<volatile uint32_t*>(static_cast<char*>(mm::phys_to_virt(kXapicPhys)) + reg);
}

// One-shot mode counts at a rate no register states: measure it against the TSC, once.
void calibrate_one_shot() {
    constexpr uint64_t kWindowMs = 2;
    write(kLvtTimer, kLvtMasked | arch::kTimerVector);
    write(kInitialCount, 0xffffffff);
    const uint64_t start = cpu::rdtsc();
    while (cpu::rdtsc() - start < tsc_khz_value * kWindowMs) cpu::pause();
    const uint32_t elapsed = 0xffffffff - read(kCurrentCount);
    write(kInitialCount, 0);
    lapic_khz = elapsed / kWindowMs;
    if (lapic_khz == 0) lapic_khz = 1;
}

}  // namespace

void init(uint64_t tsc_khz) {
    tsc_khz_value = tsc_khz;
    const auto leaf1 = cpu::cpuid(1);
    x2apic = (leaf1.ecx & (1u << 21)) != 0;
    tsc_deadline = (leaf1.ecx & (1u << 24)) != 0;

    auto& platform = platform::current();
    uint64_t base = platform.read_msr(cpu::kMsrApicBase);
    uint64_t wanted = base | kApicBaseEnable | (x2apic ? kApicBaseX2apic : 0);
    if (wanted != base) platform.write_msr(cpu::kMsrApicBase, wanted);

    // The legacy 8259 PIC stays silent: KVM resets LINT0 to ExtINT ("virtual wire"), so a device
    // line routed to both the PIC and the I/O APIC would also arrive as a PIC vector in 8..15,
    // which the IDT takes for an exception.
    platform.out8(0x21, 0xff);
    platform.out8(0xa1, 0xff);
    write(kLvtLint0, kLvtMasked);
    write(kLvtLint1, kLvtMasked);
    write(kTpr, 0);
    write(kSpurious, 0x100 | arch::kSpuriousVector);
    write(kDivide, 0xb);  // divide by 1
    if (tsc_deadline)
        write(kLvtTimer, kTimerModeTscDeadline | arch::kTimerVector);
    else
        calibrate_one_shot();
    ready = true;
}

void arm(uint64_t deadline_tsc) {
    if (tsc_deadline) {
        platform::current().write_msr(cpu::kMsrTscDeadline, deadline_tsc);
        return;
    }
    const uint64_t now = cpu::rdtsc();
    uint64_t delta = deadline_tsc > now ? deadline_tsc - now : 0;
    if (delta > (1ull << 40)) delta = 1ull << 40;  // minutes away: fire early, the caller re-arms
    uint64_t ticks = delta * lapic_khz / tsc_khz_value;
    if (ticks == 0) ticks = 1;
    if (ticks > 0xffffffff) ticks = 0xffffffff;  // fires early; the clock code re-arms
    write(kLvtTimer, arch::kTimerVector);
    write(kInitialCount, static_cast<uint32_t>(ticks));
}

void disarm() {
    if (tsc_deadline)
        platform::current().write_msr(cpu::kMsrTscDeadline, 0);
    else
        write(kInitialCount, 0);
}

void end_of_interrupt() {
    if (ready) write(kEoi, 0);
}

const char* description() {
    if (x2apic) return tsc_deadline ? "x2apic tsc-deadline" : "x2apic one-shot";
    return tsc_deadline ? "xapic tsc-deadline" : "xapic one-shot";
}

}  // namespace kiln::lapic
