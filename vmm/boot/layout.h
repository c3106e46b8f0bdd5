// Where kiln-vmm puts its boot structures in guest-physical memory. All of it lies below 1 MiB,
// which the memory map reports as reserved; the kernel loads at 1 MiB or above and the initrd
// sits at the top of RAM.
#pragma once

#include <cstdint>

namespace kiln::vmm::layout {

inline constexpr uint64_t kGdt = 0x1000;   // Linux-layout GDT, 10 entries
inline constexpr uint64_t kTss = 0x1800;   // 104-byte TSS for the 64-bit entry
inline constexpr uint64_t kPml4 = 0x2000;  // identity map of the low 1 GiB:
inline constexpr uint64_t kPdpt = 0x3000;  //   PML4 -> PDPT -> one PD of 2 MiB pages
inline constexpr uint64_t kPd = 0x4000;
inline constexpr uint64_t kStartInfo = 0x6000;
inline constexpr uint64_t kModlist = 0x6100;      // up to 4 modules
inline constexpr uint64_t kMemmap = 0x6200;       // up to 16 entries
inline constexpr uint64_t kCmdline = 0x7000;      // up to kMaxCmdline bytes and a NUL
inline constexpr uint64_t kTssStackTop = 0xa000;  // RSP0/IST1 of the boot TSS: 0x9000..0xa000
inline constexpr uint64_t kLowMemoryEnd = 0x100000;

inline constexpr uint64_t kMaxCmdline = 4096;  // the kernel's limit too
inline constexpr uint64_t kIdentityMapSize = 1ull << 30;

// The initrd is mapped from its file here, read-only, instead of being copied into RAM: pages
// load on first touch and instances share them through the page cache.
inline constexpr uint64_t kInitrdMapped = 0xe0000000;
inline constexpr uint64_t kInitrdMappedMax = 256ull << 20;

// Guest RAM ends below the 32-bit MMIO hole (LAPIC at 0xfee00000, IOAPIC at 0xfec00000).
inline constexpr uint64_t kMaxMemory = 3ull << 30;

}  // namespace kiln::vmm::layout
