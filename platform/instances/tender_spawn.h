// Starting a tender process (kiln-vmm or kiln-proc) from kilnd.
#pragma once

#include <sys/types.h>

namespace kiln::instances {

struct TenderFds {
    int stdin_fd, stdout_fd, stderr_fd;
    int netns = -1;   // the network namespace to enter; -1: kilnd's own
    int orders = -1;  // made its fd 3 (host/tender_orders.h); -1: none
    // cgroup.procs files the child writes itself into before its exec (cgroups.h), so the tender
    // never runs a moment outside its instance's group.
    const int* cgroup_procs = nullptr;
    int cgroup_count = 0;
};

// fork() would copy kilnd's page tables (every thread's stack, the balancer's buffers) only for
// exec to throw them away: a wake measured ~13 ms from kilnd's fork to the tender's first line
// of code. Like posix_spawn (which cannot setns), a CLONE_VM | CLONE_VFORK child shares kilnd's
// memory and this thread waits until it has exec'd. Returns the pid, or -1 with errno. A child
// that could not exec says why in the tender's log and ends with 127, as a tender that fails.
pid_t spawn_tender(char* const* argv, TenderFds fds);

}  // namespace kiln::instances
