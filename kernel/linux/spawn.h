// New processes: what clone() hands over when it is asked for a process rather than a thread.
#pragma once

#include <stdint.h>

#include "arch/x86_64/interrupts.h"

namespace kiln::linux {

inline constexpr uint64_t kCloneVm = 0x100, kCloneFs = 0x200, kCloneFiles = 0x400, kCloneSighand = 0x800,
                          kCloneVfork = 0x4000, kCloneThread = 0x10000, kCloneSettls = 0x80000,
                          kCloneParentSettid = 0x100000, kCloneChildCleartid = 0x200000, kCloneChildSettid = 0x1000000;

struct CloneRequest {
    uint64_t flags;
    uint64_t stack;  // new RSP, 0 to keep the parent's
    uint64_t parent_tid;
    uint64_t child_tid;
    uint64_t tls;
};

// fork, vfork, or a clone without CLONE_THREAD: returns the child's pid (the child sees 0), or a
// negative errno. The caller returns once the child has called execve or exited.
int64_t spawn_process(const CloneRequest& request, const arch::InterruptFrame& frame);

}  // namespace kiln::linux
