// The page the kernel shares with its vDSO, read-only to applications: what the vDSO needs to
// tell the time without a system call. The kernel writes it (linux/vdso.cpp) from its clock
// (time/clock.cpp); `seq` is odd while it does.
#pragma once

#include <stdint.h>

namespace kiln::vdso {

struct Data {
    uint32_t seq;
    uint32_t pad;
    uint64_t boot_tsc;  // the TSC at boot: the monotonic clock's zero
    uint64_t ns_mult;   // ns = (ticks * ns_mult) >> 32
    uint64_t epoch_ns;  // realtime = epoch_ns + ns(TSC)
};

}  // namespace kiln::vdso
