// What the loader told us: memory map, command line and modules, read from the PVH start_info.
//
// The parser reads guest-physical memory only through a PhysicalMemory, which checks every range,
// so that a malformed start_info cannot make the kernel read wild addresses. The same code runs in
// the host unit tests on a byte buffer.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln {

class PhysicalMemory {
  public:
    // Copies [phys, phys + size) into out; false if any of it is not readable.
    virtual bool read(uint64_t phys, void* out, size_t size) const = 0;

  protected:
    ~PhysicalMemory() = default;
};

struct MemoryRegion {
    uint64_t base;
    uint64_t size;
    bool usable;
};

struct BootModule {
    uint64_t base;
    uint64_t size;
};

struct BootInfo {
    static constexpr size_t kMaxRegions = 64;
    static constexpr size_t kMaxModules = 8;
    static constexpr size_t kMaxCmdline = 4096;

    MemoryRegion regions[kMaxRegions] = {};
    size_t region_count = 0;
    BootModule modules[kMaxModules] = {};
    size_t module_count = 0;
    char cmdline[kMaxCmdline + 1] = {};
    size_t cmdline_length = 0;
};

enum class BootInfoError {
    kNone,
    kUnreadableStartInfo,
    kBadMagic,
    kNoMemoryMap,
    kTooManyRegions,
    kUnreadableMemoryMap,
    kTooManyModules,
    kUnreadableModules,
    kBadModule,
    kUnreadableCmdline,
    kCmdlineTooLong,
};

const char* describe(BootInfoError error);

BootInfoError parse_boot_info(const PhysicalMemory& memory, uint64_t start_info_phys, BootInfo& out);

}  // namespace kiln
