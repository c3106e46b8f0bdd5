// The PVH boot ABI (Xen's "HVM direct boot"), as QEMU and kiln-vmm implement it, plus Kiln's own
// 64-bit entry note. Source: xen/include/public/arch-x86/hvm/start_info.h and elfnote.h.
//
// Boot state for the 32-bit PVH entry: protected mode, paging off, flat 4 GiB CS/DS/ES/SS,
// EBX = guest-physical address of `StartInfo`.
// Boot state for the Kiln 64-bit entry (kiln-vmm's default, see docs/architecture.md): long mode,
// the low 1 GiB identity mapped with 2 MiB pages (U/S=1 at every level, as PVM's native mode needs),
// CS = 0x10, SS/DS = 0x18, EBX = guest-physical address of `StartInfo`.
#pragma once

#include <stdint.h>

namespace kiln::abi {

inline constexpr uint32_t kXenElfNotePhys32Entry = 18;   // note name "Xen", desc: u32 entry
inline constexpr uint32_t kKilnElfNoteEntry64 = 0x4b01;  // note name "Kiln", desc: u64 entry

inline constexpr uint32_t kStartInfoMagic = 0x336ec578;

struct StartInfo {
    uint32_t magic;
    uint32_t version;  // 1: has the memory map
    uint32_t flags;
    uint32_t nr_modules;
    uint64_t modlist_paddr;
    uint64_t cmdline_paddr;
    uint64_t rsdp_paddr;
    uint64_t memmap_paddr;
    uint32_t memmap_entries;
    uint32_t reserved;
};
static_assert(sizeof(StartInfo) == 56);

struct ModlistEntry {
    uint64_t paddr;
    uint64_t size;
    uint64_t cmdline_paddr;
    uint64_t reserved;
};
static_assert(sizeof(ModlistEntry) == 32);

enum class MemmapType : uint32_t { kRam = 1, kReserved = 2, kAcpi = 3, kNvs = 4, kUnusable = 5 };

struct MemmapEntry {
    uint64_t addr;
    uint64_t size;
    uint32_t type;  // MemmapType
    uint32_t reserved;
};
static_assert(sizeof(MemmapEntry) == 24);

}  // namespace kiln::abi
