// Per-instance CPU share and process cap, through the host's cgroups, on both platforms: the
// tender (kiln-vmm or kiln-proc) is moved into its instance's group before it starts the
// instance, so everything the instance is made of (the tender's threads, kiln-proc's instance
// process) is counted there.
//
//   cgroup v2 (one hierarchy with the cpu and pids controllers):
//     /sys/fs/cgroup/kiln-<hash of the state dir>/<uuid>/{cpu.weight,pids.max,cgroup.procs}
//   cgroup v1 (a hierarchy per controller, as on this project's machines):
//     /sys/fs/cgroup/cpu/kiln-<hash>/<uuid>/{cpu.shares,cgroup.procs}
//     /sys/fs/cgroup/pids/kiln-<hash>/<uuid>/{pids.max,cgroup.procs}
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "host/unique_fd.h"
#include "instances/limits.h"

namespace kiln::instances {

// v2's cpu.weight (1 to 10000, 100 the default) for a v1 share.
int64_t cpu_weight_of_shares(int64_t shares);

class Cgroups {
  public:
    // The host's cgroups under `root`, kilnd's groups in `root`/[controller/]`parent`.
    Cgroups(const std::string& root, const std::string& parent);

    bool available() const { return version_ != 0; }
    int version() const { return version_; }  // 1, 2, or 0: none usable (why_not says why)
    const std::string& why_not() const { return why_not_; }

    // Makes (or updates) the instance's group with `limits` and opens its cgroup.procs files (one
    // per hierarchy), for a new process to write "0" into or kilnd to write a pid into. Throws
    // std::runtime_error naming the file that failed.
    std::vector<UniqueFd> prepare(const std::string& instance, const Limits& limits) const;
    // Moves process `pid` (all its threads) into the group whose cgroup.procs are `procs`.
    static void move(const std::vector<UniqueFd>& procs, pid_t pid);
    // The same, and the children `pid` has (a waiting kiln-proc's instance process, forked ahead).
    static void move_with_children(const std::vector<UniqueFd>& procs, pid_t pid);
    // The group of a tender waiting for its orders (tender_pool.h), `group` (not an instance's
    // uuid) becomes `instance`'s: renamed, with its processes in it, where the host allows it
    // (cgroup v1). Moving a process between groups waits for an RCU grace period (0.5 to 3.5 ms
    // on this project's machines) on the path of every start; a rename does not. False: not
    // renamed (v2 has no rename; the caller moves the processes and removes `group`).
    bool adopt(const std::string& group, const std::string& instance) const;
    // Deletes the instance's group; best effort (a group with a process left stays).
    void remove(const std::string& instance) const;
    // Deletes kilnd's own group if no instance's is left in it; best effort.
    void remove_parent() const;
    // The instance's group directories (for tests and `kiln inspect`).
    std::vector<std::string> dirs(const std::string& instance) const;

  private:
    int version_ = 0;
    std::string why_not_;
    std::string cpu_parent_, pids_parent_;  // the same directory on v2
};

}  // namespace kiln::instances
