// KVM ioctl numbers that <linux/kvm.h> gets wrong in C++.
//
// linux-libc-dev 6.1 declares flexible array members with __DECLARE_FLEX_ARRAY, which in C++
// expands to a struct member that makes e.g. sizeof(kvm_cpuid2) 12 instead of the kernel's 8.
// The ioctl numbers encode that size, so KVM rejects the C++ spelling with EINVAL. These are the
// kernel's own numbers: the header of each struct (fixed fields only) is 8 bytes.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstddef>

namespace kiln::vmm::ioctls {

inline constexpr unsigned long kFlexHeaderSize = 8;  // {__u32 n; __u32 pad;} before the array

inline constexpr unsigned long kGetSupportedCpuid = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x05, kFlexHeaderSize);
inline constexpr unsigned long kSetCpuid2 = _IOC(_IOC_WRITE, KVMIO, 0x90, kFlexHeaderSize);
inline constexpr unsigned long kGetMsrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, kFlexHeaderSize);
inline constexpr unsigned long kSetMsrs = _IOC(_IOC_WRITE, KVMIO, 0x89, kFlexHeaderSize);

inline constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
// struct kvm_xsave is 4096 bytes in C (a flexible `extra` array follows).
inline constexpr unsigned long kXsaveSize = 4096;
inline constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, kXsaveSize);
inline constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, kXsaveSize);
inline constexpr unsigned long kGetXsave2 = _IOC(_IOC_READ, KVMIO, 0xcf, kXsaveSize);

// struct kvm_stats_desc: flags, exponent, size, offset, bucket_size, then the name.
inline constexpr size_t kStatsDescHeaderSize = 16;

}  // namespace kiln::vmm::ioctls
