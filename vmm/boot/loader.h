// Puts a kernel, its initrd, its command line and the PVH start_info into guest memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "boot/elf_image.h"
#include "kvm/guest_memory.h"

namespace kiln::vmm {

struct BootPayload {
    std::string cmdline;
    std::span<const uint8_t> initrd;
    // Where the initrd is already mapped (a read-only memory slot of its file, no copy), or 0 to
    // copy it to the top of RAM.
    uint64_t initrd_mapped_at = 0;
    // The kernel's read-only segments are mapped from its file by the monitor (kiln-proc), not
    // copied into memory.
    bool read_only_segments_mapped = false;
};

// The guest memory a kernel and initrd need at least: everything below the kernel's end, the
// initrd if it is copied into RAM, and 2 MiB for the kernel's own heap.
uint64_t minimum_memory(const ElfImage& kernel, uint64_t initrd_size);

// Throws VmmError ("too little memory: ...") unless `memory_bytes` holds kernel and initrd.
void check_memory_fits(const ElfImage& kernel, uint64_t initrd_size, uint64_t memory_bytes);

// Copies the segments and writes start_info (with its memory map, module list and command line).
// Returns the guest-physical address of start_info. Throws VmmError if anything does not fit.
uint64_t load_kernel(GuestMemory& memory, const ElfImage& kernel, const BootPayload& payload);

}  // namespace kiln::vmm
