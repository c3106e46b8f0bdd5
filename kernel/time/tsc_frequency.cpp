// Where the TSC frequency comes from. In PVM's native mode the guest sees the host's CPUID, not
// the VMM's, so the VMM's word (`kiln.tsc_khz=`) is the only reliable source there.
#include "arch/x86_64/cpu.h"
#include "core/boot_env.h"
#include "mm/layout.h"
#include "platform/platform.h"
#include "time/clock.h"

namespace kiln::time {
namespace {

struct PvclockTimeInfo {
    volatile uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    volatile uint32_t tsc_to_system_mul;
    volatile int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
};
alignas(64) constinit PvclockTimeInfo pvclock = {};

bool kvm_signature() {
    const auto sig = cpu::cpuid(0x40000000);
    return sig.ebx == 0x4b4d564b && sig.ecx == 0x564b4d56 && sig.edx == 0x4d;
}

// kvmclock publishes the TSC-to-nanoseconds scale; the frequency follows from it.
uint64_t from_kvmclock() {
    if (!kvm_signature() || cpu::cpuid(0x40000000).eax < 0x40000001) return 0;
    constexpr uint32_t kClocksource2 = 1u << 3;
    if ((cpu::cpuid(0x40000001).eax & kClocksource2) == 0) return 0;
    auto& platform = platform::current();
    platform.write_msr(cpu::kMsrKvmSystemTimeNew, mm::virt_to_phys(&pvclock) | 1);
    uint32_t mul = pvclock.tsc_to_system_mul;
    int8_t shift = pvclock.tsc_shift;
    platform.write_msr(cpu::kMsrKvmSystemTimeNew, 0);
    if (mul == 0) return 0;
    uint64_t khz = (1000000ull << 32) / mul;
    return shift < 0 ? khz << -shift : khz >> shift;
}

// CPUID leaf 0x15 (TSC/crystal ratio) or 0x16 (base frequency), where the CPU states them.
uint64_t from_cpuid() {
    const uint32_t max_leaf = cpu::cpuid(0).eax;
    if (max_leaf >= 0x15) {
        auto r = cpu::cpuid(0x15);
        if (r.eax != 0 && r.ebx != 0 && r.ecx != 0) return static_cast<uint64_t>(r.ecx) * r.ebx / r.eax / 1000;
    }
    if (max_leaf >= 0x16) {
        auto r = cpu::cpuid(0x16);
        if ((r.eax & 0xffff) != 0) return (r.eax & 0xffff) * 1000ull;
    }
    return 0;
}

// The PIT counts at 1.193182 MHz. Channel 0 in mode 0, read back with the latch command.
uint64_t from_pit() {
    constexpr uint16_t kChannel0 = 0x40;
    constexpr uint16_t kCommand = 0x43;
    constexpr uint64_t kPitHz = 1193182;
    constexpr uint32_t kWindowTicks = 11932;  // 10 ms
    auto& p = platform::current();
    auto read_count = [&p]() -> uint32_t {
        p.out8(kCommand, 0x00);  // latch channel 0
        uint32_t lo = p.in8(kChannel0);
        uint32_t hi = p.in8(kChannel0);
        return (hi << 8) | lo;
    };
    p.out8(kCommand, 0x30);  // channel 0, low then high byte, mode 0
    p.out8(kChannel0, 0xff);
    p.out8(kChannel0, 0xff);
    // Wait for the count to start moving, bounded: a machine without a PIT reads a constant.
    uint32_t start = read_count();
    int spins = 0;
    for (uint32_t c = start; c == start; c = read_count())
        if (++spins > 100000) return 0;
    start = read_count();
    const uint64_t tsc_start = cpu::rdtsc();
    for (spins = 0;; ++spins) {
        uint32_t now = read_count();
        if (now > start || spins > 10000000) return 0;  // wrapped or stuck: not a PIT
        if (start - now >= kWindowTicks) {
            const uint64_t tsc_end = cpu::rdtsc();
            return (tsc_end - tsc_start) * kPitHz / (start - now) / 1000;
        }
    }
}

}  // namespace

FrequencySource find_tsc_frequency(const Cmdline& cmdline) {
    uint64_t khz = 0;
    if (cmdline.number("kiln.tsc_khz", khz) && khz > 0) return {khz, "monitor"};
    if ((khz = from_kvmclock()) != 0) return {khz, "kvmclock"};
    if ((khz = from_cpuid()) != 0) return {khz, "cpuid"};
    if ((khz = from_pit()) != 0) return {khz, "pit"};
    return {2000000, "none (assumed 2 GHz)"};
}

}  // namespace kiln::time
