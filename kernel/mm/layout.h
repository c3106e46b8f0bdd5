// Translation between the kernel's virtual addresses and physical ones (arch/x86_64/layout.h).
#pragma once

#include <stdint.h>

#include "arch/x86_64/layout.h"

namespace kiln::mm {

inline constexpr uint64_t kKernelBase = KILN_KERNEL_BASE;
inline constexpr uint64_t kDirectMapBase = KILN_DIRECT_MAP_BASE;
inline constexpr uint64_t kDirectMapSize = KILN_DIRECT_MAP_SIZE;
inline constexpr uint64_t kPageSize = 4096;

inline void* phys_to_virt(uint64_t phys) { return reinterpret_cast<void*>(kDirectMapBase + phys); }

inline uint64_t virt_to_phys(const void* p) {
    auto v = reinterpret_cast<uint64_t>(p);
    if (v >= kKernelBase) return v - kKernelBase;
    return v - kDirectMapBase;
}

// Physical addresses the kernel image occupies (from the linker script).
uint64_t kernel_phys_start();
uint64_t kernel_phys_end();

}  // namespace kiln::mm
