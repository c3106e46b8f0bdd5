// How the vCPU starts: the register state a boot protocol promises the kernel.
//
// Two protocols today, behind one interface so that Linux's 64-bit boot protocol (vmlinux,
// bzImage) can join them for hosts with hardware virtualization:
//  - `direct64`: long mode set up by kiln-vmm, identity-mapped low memory, entry from the Kiln ELF
//    note. The default: PVM's native mode was proven from this state (research/pvm.md).
//  - `pvh`: Xen's PVH 32-bit entry, as QEMU uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "boot/elf_image.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"
#include "kvm/vcpu.h"

namespace kiln::vmm {

class BootProtocol {
  public:
    virtual ~BootProtocol() = default;
    virtual const char* name() const = 0;
    // Writes whatever the protocol needs into guest memory (page tables, GDT) and sets the
    // boot vCPU's registers. `start_info` is the guest-physical address load_kernel() returned.
    virtual void prepare(GuestMemory& memory, Vcpu& boot_vcpu, const Kvm::CpuidTable& cpuid, uint64_t start_info) = 0;
};

enum class BootMode { kAuto, kDirect64, kPvh };

// Picks the protocol for `kernel`: `kAuto` prefers direct64 when the image offers it.
// Throws VmmError if the image lacks the entry point the mode needs.
std::unique_ptr<BootProtocol> make_boot_protocol(const ElfImage& kernel, BootMode mode);

BootMode parse_boot_mode(const std::string& text);

}  // namespace kiln::vmm
