#include "arch/x86_64/fpu.h"

#include "arch/x86_64/cpu.h"
#include "lib/string.h"
#include "platform/platform.h"

namespace kiln::fpu {
namespace {

constinit bool xsave_available = false;
constinit uint64_t xcr0 = 0;
constinit size_t size = 512;
// The state after `fninit` with MXCSR's default: what a new thread starts with.
alignas(64) constinit uint8_t clean_state[8192] = {};

constexpr uint64_t kX87 = 1, kSse = 2, kAvx = 4, kOpmask = 32, kZmmHi256 = 64, kHi16Zmm = 128;

}  // namespace

void init(bool allow_xsave) {
    const auto leaf1 = cpu::cpuid(1);
    xsave_available = allow_xsave && (leaf1.ecx & (1u << 26)) != 0;
    const bool fsgsbase = (cpu::cpuid(0).eax >= 7) && (cpu::cpuid(7).ebx & 1) != 0;
    uint64_t wanted = 0;
    if (xsave_available) {
        const auto d0 = cpu::cpuid(0xd, 0);
        const uint64_t supported = (static_cast<uint64_t>(d0.edx) << 32) | d0.eax;
        wanted = supported & (kX87 | kSse | kAvx | kOpmask | kZmmHi256 | kHi16Zmm);
        if ((wanted & (kOpmask | kZmmHi256 | kHi16Zmm)) != (kOpmask | kZmmHi256 | kHi16Zmm))
            wanted &= ~(kOpmask | kZmmHi256 | kHi16Zmm);  // AVX-512 only as a whole
    }
    platform::current().enable_user_features(xsave_available, wanted, fsgsbase);
    if (xsave_available) {
        // Trust what the CPU reports, not what was asked: PVM fixes XCR0 itself, and nested
        // hypervisors have been seen to run a guest with less than it set. XSAVE must cover x87
        // and SSE, or it does not save what FXSAVE would.
        uint32_t lo, hi;
        asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
        if ((xcr0 & (kX87 | kSse)) != (kX87 | kSse)) xsave_available = false;
    }
    if (xsave_available) size = cpu::cpuid(0xd, 0).ebx;  // for the XCR0 now in force
    if (size > sizeof(clean_state)) size = sizeof(clean_state);
    size = (size + 63) & ~size_t{63};

    const uint32_t mxcsr = 0x1f80;
    asm volatile("fninit; ldmxcsr %0" : : "m"(mxcsr));
    memset(clean_state, 0, sizeof(clean_state));
    save(clean_state);
}

size_t state_size() { return size; }
bool uses_xsave() { return xsave_available; }
uint64_t enabled_features() { return xcr0; }

void init_state(void* area) { memcpy(area, clean_state, size); }

void save(void* area) {
    if (xsave_available)
        asm volatile("xsave64 (%0)"
                     :
                     : "r"(area), "a"(static_cast<uint32_t>(xcr0)), "d"(static_cast<uint32_t>(xcr0 >> 32))
                     : "memory");
    else
        asm volatile("fxsave64 (%0)" : : "r"(area) : "memory");
}

void restore(const void* area) {
    if (xsave_available)
        asm volatile("xrstor64 (%0)"
                     :
                     : "r"(area), "a"(static_cast<uint32_t>(xcr0)), "d"(static_cast<uint32_t>(xcr0 >> 32))
                     : "memory");
    else
        asm volatile("fxrstor64 (%0)" : : "r"(area) : "memory");
}

}  // namespace kiln::fpu
