// What an instance may use of its host besides its memory: a CPU share and a cap on host tasks,
// applied through cgroups (cgroups.h) on both platforms. The share is Docker's `--cpu-shares`
// (a relative weight, 1024 the default; cgroup v2's cpu.weight gets it converted as systemd and
// crun convert it); the cap is Docker's `--pids-limit`.
#pragma once

#include <cstdint>

namespace kiln::instances {

struct Limits {
    static constexpr int64_t kDefaultCpuShares = 1024, kMinCpuShares = 2, kMaxCpuShares = 262144;
    // Tasks, threads included: kiln-vmm's vCPU and device threads, kiln-proc's supervisor thread
    // and instance process. The instance's own threads are the Kiln kernel's, not the host's.
    static constexpr int64_t kDefaultPidsLimit = 64, kMinPidsLimit = 8, kMaxPidsLimit = 4194304;
    int64_t cpu_shares = kDefaultCpuShares;
    int64_t pids_limit = kDefaultPidsLimit;
};

}  // namespace kiln::instances
