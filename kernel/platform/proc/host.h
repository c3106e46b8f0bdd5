// The proc backend's host system calls: the only `syscall` instructions of the kernel, in
// host.S. Each wrapper names the one Linux call it makes; kiln-proc's seccomp filter allows these
// and nothing else (docs/architecture.md lists them with their reasons).
//
// Freestanding: no libc, so the few host structures the kernel reads are spelled out here in the
// x86-64 Linux layout (uapi asm/sigcontext.h, asm/ucontext.h, asm-generic/siginfo.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" long host_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5);
extern "C" char host_signal_restorer[];

namespace kiln::proc::host {

enum : long {
    kWrite = 1,
    kMmap = 9,
    kMprotect = 10,
    kMunmap = 11,
    kRtSigaction = 13,
    kRtSigprocmask = 14,
    kSigaltstack = 131,
    kPrctl = 157,
    kArchPrctl = 158,
    kTimerCreate = 222,
    kTimerSettime = 223,
    kClockGettime = 228,
    kExitGroup = 231,
    kPpoll = 271,
};

enum : int { kSigIll = 4, kSigTrap = 5, kSigBus = 7, kSigFpe = 8, kSigSegv = 11, kSigAlrm = 14, kSigSys = 31 };

struct Sigcontext {
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2;
    uint64_t fpstate;
    uint64_t reserved[8];
};

struct Ucontext {
    uint64_t flags;
    Ucontext* link;
    void* stack_base;
    int32_t stack_flags;
    uint64_t stack_size;
    Sigcontext mcontext;
    uint64_t sigmask;
};

struct Siginfo {
    int32_t signo, error, code, pad;
    uint64_t address;  // SIGSEGV, SIGBUS, SIGILL, SIGFPE: si_addr; SIGSYS: si_call_addr
    int32_t syscall;   // SIGSYS only
    uint32_t arch;
};

struct Timespec {
    int64_t seconds, nanoseconds;
};

inline long write(int fd, const void* data, size_t size) {
    return host_syscall(kWrite, fd, reinterpret_cast<long>(data), static_cast<long>(size), 0, 0, 0);
}

[[noreturn]] inline void exit_group(int status) {
    for (;;) host_syscall(kExitGroup, status, 0, 0, 0, 0, 0);
}

inline uint64_t monotonic_ns() {
    Timespec t{};
    host_syscall(kClockGettime, 1 /* CLOCK_MONOTONIC */, reinterpret_cast<long>(&t), 0, 0, 0, 0);
    return static_cast<uint64_t>(t.seconds) * 1000000000ull + static_cast<uint64_t>(t.nanoseconds);
}

inline constexpr uint64_t signal_bit(int signal) { return 1ull << (signal - 1); }

}  // namespace kiln::proc::host
