// A KVM virtual machine: its guest memory and its in-kernel interrupt controller.
//
// Set-up order matters on PVM (ARCHITECTURE.md §0): memory is registered before the irqchip
// exists (the other order costs ~6 ms in the memory-slot ioctl), and there is never a PIT
// (KVM_CREATE_PIT2 adds ~16 ms to teardown, and nothing here needs it).
#pragma once

#include <cstdint>

#include "host/unique_fd.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"

namespace kiln::vmm {

class Vm {
  public:
    explicit Vm(const Kvm& kvm);

    int fd() const { return fd_.get(); }
    const Kvm& kvm() const { return kvm_; }

    void register_memory(const GuestMemory& memory);
    // Maps host memory read-only into the guest at `gpa` (slot 1). False if KVM cannot.
    bool map_readonly(uint64_t gpa, const void* host, uint64_t size);
    void create_irqchip();

  private:
    const Kvm& kvm_;
    UniqueFd fd_;
    bool has_memory_ = false;
};

}  // namespace kiln::vmm
