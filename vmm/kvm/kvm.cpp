#include "kvm/kvm.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "kvm/ioctls.h"
#include "util/error.h"

namespace kiln::vmm {

Kvm::Kvm() {
    // KILN_KVM_DEVICE points elsewhere only in tests of the "no KVM" path.
    const char* override_path = std::getenv("KILN_KVM_DEVICE");
    const std::string path = override_path != nullptr ? override_path : "/dev/kvm";
    fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_.valid()) {
        int error = errno;
        if (error == ENOENT)
            throw VmmError("no usable " + path + ": the device does not exist (KVM is not available on this host)");
        throw system_error("no usable " + path + ": cannot open it", error);
    }
    int version = ::ioctl(fd_.get(), KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        throw VmmError("no usable /dev/kvm: API version " + std::to_string(version) + ", expected " +
                       std::to_string(KVM_API_VERSION));
    vcpu_mmap_size_ = ::ioctl(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (vcpu_mmap_size_ <= 0) throw system_error("no usable /dev/kvm: KVM_GET_VCPU_MMAP_SIZE");
}

int Kvm::check_extension(long capability) const {
    int r = ::ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability);
    return r < 0 ? 0 : r;
}

Kvm::CpuidTable Kvm::supported_cpuid() const {
    for (uint32_t entries = 64; entries <= 4096; entries *= 2) {
        CpuidTable t;
        const size_t bytes = sizeof(kvm_cpuid2) + entries * sizeof(kvm_cpuid_entry2);
        t.storage = std::make_unique<uint8_t[]>(bytes);
        t.table()->nent = entries;
        if (::ioctl(fd_.get(), ioctls::kGetSupportedCpuid, t.table()) == 0) {
            // KVM emulates the TSC-deadline timer with its in-kernel LAPIC but leaves the CPUID
            // bit to the VMM (KVM_CAP_TSC_DEADLINE_TIMER).
            constexpr uint32_t kTscDeadline = 1u << 24;
            if (kvm_cpuid_entry2* leaf1 = t.find(1); leaf1 && check_extension(KVM_CAP_TSC_DEADLINE_TIMER))
                leaf1->ecx |= kTscDeadline;
            return t;
        }
        if (errno != E2BIG) throw system_error("KVM_GET_SUPPORTED_CPUID");
    }
    throw VmmError("KVM_GET_SUPPORTED_CPUID: table larger than 4096 entries");
}

kvm_cpuid_entry2* Kvm::CpuidTable::find(uint32_t function, uint32_t index) const {
    kvm_cpuid2* t = table();
    for (uint32_t i = 0; i < t->nent; ++i) {
        kvm_cpuid_entry2& e = t->entries[i];
        if (e.function != function) continue;
        if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0 && e.index != index) continue;
        return &e;
    }
    return nullptr;
}

}  // namespace kiln::vmm
