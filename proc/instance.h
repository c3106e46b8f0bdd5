// The instance process: kiln-proc's child that becomes the Kiln kernel.
//
// It is forked ahead and waits for its plan: on this host a fork and the child's first page faults
// take a millisecond and more (every page-table write is a trip through the hypervisor). A tender
// that kilnd starts ahead of need (host/tender_orders.h) forks it while it waits for its orders,
// so no fork is left on a wake's path; one started for an instance forks it first thing. The plan carries what the
// instance needs: the descriptors made after the fork (passed with SCM_RIGHTS and put at the numbers the seccomp filter
// and the hand-off name) and what goes where in its memory.
#pragma once

#include <sched.h>
#include <sys/types.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "host/unique_fd.h"
#include "sandbox.h"

namespace kiln::proc {

// A part of the instance's memory mapped read-only from a file (never W+X) rather than copied:
// the kernel's read-only segments, from the kernel's file, or from a snapshot's memory file.
struct ReadOnlyRange {
    uint64_t phys;
    uint64_t length;
    uint64_t file_offset;
    uint32_t prot;  // PROT_READ, with PROT_EXEC for text
    uint32_t pad;
};

struct InstancePlan {
    pid_t supervisor = 0;
    uint64_t memory_size = 0;
    uint64_t entry = 0;       // the kernel's proc entry point
    uint64_t start_info = 0;  // a boot's start info; 0 for a restore
    Identity identity{};
    InstanceFds fds{};         // kept by the instance
    int read_only_fd = -1;     // `read_only`'s ranges are mapped from it, before the confinement
    uint64_t initrd_size = 0;  // mapped from fds.initrd at layout::kInitrdMapped when not 0
    std::vector<std::pair<uint64_t, uint64_t>> resident;  // memfd extents with data: mapped at once
    std::vector<ReadOnlyRange> read_only;
    cpu_set_t affinity{};  // the CPUs the instance may run on once started (the supervisor's)
};

// The supervisor's side of the instance process.
class InstanceProcess {
  public:
    // Forks the instance process, which waits for its plan. Descriptors open now reach it at
    // their numbers; those opened later travel with the plan. Throws VmmError if it cannot fork.
    InstanceProcess();
    // Not started: it is killed and reaped.
    ~InstanceProcess();
    InstanceProcess(const InstanceProcess&) = delete;
    InstanceProcess& operator=(const InstanceProcess&) = delete;

    pid_t pid() const { return pid_; }
    // Sends the plan (the descriptors it names that the process lacks go with it): the instance
    // starts, on this CPU, and goes back to the plan's affinity once running. Throws VmmError if
    // it cannot be sent (the process is gone).
    void start(const InstancePlan& plan);

  private:
    pid_t pid_ = -1;
    UniqueFd socket_;
    bool started_ = false;
};

}  // namespace kiln::proc
