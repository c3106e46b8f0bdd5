// System calls: entry through `syscall`/IA32_LSTAR, dispatch by number, and the way back to user
// mode (signals, preemption, sysretq or iretq).
#pragma once

#include <stdint.h>

#include "arch/x86_64/interrupts.h"

namespace kiln::linux {

// The frame's `vector` for a system call (no real vector is this high).
inline constexpr uint64_t kSyscallVector = 0x100;

struct SyscallArgs {
    uint64_t a[6];
    arch::InterruptFrame* frame;
};

using SyscallHandler = int64_t (*)(SyscallArgs&);

// Programs STAR, LSTAR and FMASK, and fills the table.
void init_syscalls();

const char* syscall_name(uint64_t number);

// Handlers, by area (sys_*.cpp). Each returns the result or a negative errno.
void register_process_syscalls(SyscallHandler* table);
void register_memory_syscalls(SyscallHandler* table);
void register_file_syscalls(SyscallHandler* table);
void register_time_syscalls(SyscallHandler* table);
void register_thread_syscalls(SyscallHandler* table);
void register_signal_syscalls(SyscallHandler* table);
void register_poll_syscalls(SyscallHandler* table);
void register_futex_syscalls(SyscallHandler* table);
void register_socket_syscalls(SyscallHandler* table);
void register_identity_syscalls(SyscallHandler* table);
void register_spawn_syscalls(SyscallHandler* table);

inline constexpr uint64_t kSyscallCount = 451;

}  // namespace kiln::linux
