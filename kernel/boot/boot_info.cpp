#include "boot/boot_info.h"

#include "kiln/pvh.h"

namespace kiln {

const char* describe(BootInfoError error) {
    switch (error) {
        case BootInfoError::kNone: return "ok";
        case BootInfoError::kUnreadableStartInfo: return "start_info is outside memory";
        case BootInfoError::kBadMagic: return "start_info has a bad magic number";
        case BootInfoError::kNoMemoryMap: return "start_info has no memory map (version 0)";
        case BootInfoError::kTooManyRegions: return "memory map has more than 64 entries";
        case BootInfoError::kUnreadableMemoryMap: return "memory map is outside memory";
        case BootInfoError::kTooManyModules: return "more than 8 boot modules";
        case BootInfoError::kUnreadableModules: return "module list is outside memory";
        case BootInfoError::kBadModule: return "a boot module's range overflows";
        case BootInfoError::kUnreadableCmdline: return "command line is outside memory";
        case BootInfoError::kCmdlineTooLong: return "command line longer than 4096 bytes";
    }
    return "unknown error";
}

namespace {

BootInfoError read_cmdline(const PhysicalMemory& memory, uint64_t phys, BootInfo& out) {
    out.cmdline_length = 0;
    out.cmdline[0] = '\0';
    if (phys == 0) return BootInfoError::kNone;
    // Byte by byte up to the NUL: the string's length is unknown and may end at the last byte of
    // memory, so a bulk read could fail where the string itself is fine.
    for (size_t i = 0; i <= BootInfo::kMaxCmdline; ++i) {
        char c;
        if (!memory.read(phys + i, &c, 1)) return BootInfoError::kUnreadableCmdline;
        if (c == '\0') {
            out.cmdline_length = i;
            return BootInfoError::kNone;
        }
        if (i == BootInfo::kMaxCmdline) break;
        out.cmdline[i] = c;
        out.cmdline[i + 1] = '\0';
    }
    out.cmdline[0] = '\0';
    return BootInfoError::kCmdlineTooLong;
}

}  // namespace

BootInfoError parse_boot_info(const PhysicalMemory& memory, uint64_t start_info_phys, BootInfo& out) {
    out.region_count = 0;
    out.module_count = 0;
    abi::StartInfo info;
    if (!memory.read(start_info_phys, &info, sizeof(info))) return BootInfoError::kUnreadableStartInfo;
    if (info.magic != abi::kStartInfoMagic) return BootInfoError::kBadMagic;
    if (info.version < 1 || info.memmap_paddr == 0 || info.memmap_entries == 0) return BootInfoError::kNoMemoryMap;
    if (info.memmap_entries > BootInfo::kMaxRegions) return BootInfoError::kTooManyRegions;
    if (info.nr_modules > BootInfo::kMaxModules) return BootInfoError::kTooManyModules;

    for (uint32_t i = 0; i < info.memmap_entries; ++i) {
        abi::MemmapEntry entry;
        if (!memory.read(info.memmap_paddr + i * sizeof(entry), &entry, sizeof(entry)))
            return BootInfoError::kUnreadableMemoryMap;
        if (entry.size == 0 || entry.addr + entry.size < entry.addr) continue;  // empty or wrapping
        out.regions[out.region_count++] = {entry.addr, entry.size,
                                           entry.type == static_cast<uint32_t>(abi::MemmapType::kRam)};
    }

    for (uint32_t i = 0; i < info.nr_modules; ++i) {
        abi::ModlistEntry entry;
        if (!memory.read(info.modlist_paddr + i * sizeof(entry), &entry, sizeof(entry)))
            return BootInfoError::kUnreadableModules;
        if (entry.paddr + entry.size < entry.paddr) return BootInfoError::kBadModule;
        out.modules[out.module_count++] = {entry.paddr, entry.size};
    }

    return read_cmdline(memory, info.cmdline_paddr, out);
}

}  // namespace kiln
