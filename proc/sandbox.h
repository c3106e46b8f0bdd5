// The instance's confinement (docs/proc.md, "The sandbox"), in two parts:
// - what the tender does in the instance before the jump: a uid and gid of its own, no new
//   privileges, rlimits, no file descriptors but the instance's own;
// - the seccomp allowlist of the kernel's steady state, compiled here with libseccomp and loaded
//   by the kernel itself once its set-up calls (signal handlers, the timer, Syscall User Dispatch)
//   are done, so that none of those stays allowed.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <array>
#include <string>
#include <vector>

#include "kiln/proc.h"

namespace kiln::proc {

struct InstanceFds {
    int memory;   // the memfd: the application's pages are mapped from it
    int console;  // the console's writes
    int net;      // the tap, or -1
    int initrd;   // the initrd's file, mapped read-only, or -1
    int control;  // the channel to the supervisor
    int resume;   // --resume-fifo's read end (polled while held, never read), or -1
    // The volumes' files in the flags' order, -1 past the last; a read-only one is never written.
    std::array<int, abi::kProcMaxVolumes> volumes;
    std::array<bool, abi::kProcMaxVolumes> volume_read_only;
};

// Throws VmmError if libseccomp fails.
std::vector<sock_filter> instance_filter(const InstanceFds& fds);

struct Identity {
    uid_t uid;
    gid_t gid;
};

// The identity an instance gets when kiln-proc runs as root: one per instance, derived from the
// supervisor's pid, far above the uids a distribution hands out.
Identity instance_identity(pid_t supervisor);

// In the instance. On failure, returns what failed (errno is set); empty on success.
std::string confine(const Identity& identity, const InstanceFds& fds);

}  // namespace kiln::proc
