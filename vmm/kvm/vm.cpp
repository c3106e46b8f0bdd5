#include "kvm/vm.h"

#include <sys/ioctl.h>

#include "util/error.h"

namespace kiln::vmm {

Vm::Vm(const Kvm& kvm) : kvm_(kvm) {
    int fd;
    do {
        fd = ::ioctl(kvm.fd(), KVM_CREATE_VM, 0);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) throw system_error("no usable /dev/kvm: KVM_CREATE_VM failed");
    fd_.reset(fd);
    // Real-mode TSS pages for VMX (unused in long mode, but KVM wants them before any vCPU).
    ::ioctl(fd_.get(), KVM_SET_TSS_ADDR, 0xfffbd000ul);
}

void Vm::register_memory(const GuestMemory& memory) {
    kvm_userspace_memory_region region{};
    region.slot = 0;
    region.guest_phys_addr = 0;
    region.memory_size = memory.size();
    region.userspace_addr = reinterpret_cast<uint64_t>(memory.host_base());
    if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) throw system_error("KVM_SET_USER_MEMORY_REGION");
    has_memory_ = true;
}

bool Vm::map_readonly(uint64_t gpa, const void* host, uint64_t size) {
    if (kvm_.check_extension(KVM_CAP_READONLY_MEM) <= 0) return false;
    kvm_userspace_memory_region region{};
    region.slot = 1;
    region.flags = KVM_MEM_READONLY;
    region.guest_phys_addr = gpa;
    region.memory_size = (size + 4095) & ~uint64_t{4095};
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    return ::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) == 0;
}

void Vm::create_irqchip() {
    if (!has_memory_) throw VmmError("internal: the irqchip must be created after guest memory");
    if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) != 0) throw system_error("KVM_CREATE_IRQCHIP");
}

}  // namespace kiln::vmm
