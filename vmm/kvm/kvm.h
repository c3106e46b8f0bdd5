// The KVM system device: opening it, checking the API, and what it offers.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "host/unique_fd.h"

namespace kiln::vmm {

class Kvm {
  public:
    // Opens /dev/kvm; throws VmmError with a clear message when it is missing or unusable.
    Kvm();

    int fd() const { return fd_.get(); }
    int vcpu_mmap_size() const { return vcpu_mmap_size_; }
    int check_extension(long capability) const;

    // KVM_GET_SUPPORTED_CPUID, as a buffer ready for KVM_SET_CPUID2.
    struct CpuidTable {
        std::unique_ptr<uint8_t[]> storage;
        kvm_cpuid2* table() const { return reinterpret_cast<kvm_cpuid2*>(storage.get()); }
        kvm_cpuid_entry2* find(uint32_t function, uint32_t index = 0) const;
    };
    CpuidTable supported_cpuid() const;

  private:
    UniqueFd fd_;
    int vcpu_mmap_size_ = 0;
};

}  // namespace kiln::vmm
