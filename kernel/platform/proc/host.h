// The proc backend's host system calls: the only `syscall` instructions of the kernel, in
// host.S. Each wrapper names the one Linux call it makes; kiln-proc's seccomp filter allows these
// and nothing else (docs/architecture.md lists them with their reasons).
//
// Freestanding: no libc, so the host structures the kernel reads are spelled out in the x86-64
// Linux layout: the signal context in linux/signal_frame.h, siginfo here (asm-generic/siginfo.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "linux/signal_frame.h"

extern "C" long host_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5);
extern "C" char host_signal_restorer[];

namespace kiln::proc::host {

enum : long {
    kRead = 0,
    kWrite = 1,
    kMmap = 9,
    kMprotect = 10,
    kMunmap = 11,
    kPread64 = 17,
    kPwrite64 = 18,
    kRtSigaction = 13,
    kRtSigprocmask = 14,
    kFdatasync = 75,
    kSigaltstack = 131,
    kPrctl = 157,
    kArchPrctl = 158,
    kTimerCreate = 222,
    kTimerSettime = 223,
    kClockGettime = 228,
    kExitGroup = 231,
    kPpoll = 271,
};

struct Pollfd {
    int32_t fd;
    int16_t events, revents;
};
inline constexpr int16_t kPollIn = 1;

enum : int {
    kSigIll = 4,
    kSigTrap = 5,
    kSigBus = 7,
    kSigFpe = 8,
    kSigUsr1 = 10,
    kSigSegv = 11,
    kSigAlrm = 14,
    kSigIo = 29,
    kSigSys = 31
};

// The host's signal context has the layout the kernel gives its own applications.
using Sigcontext = linux::SigContext;
using Ucontext = linux::UContext;

struct Siginfo {
    int32_t signo, error, code, pad;
    uint64_t address;  // SIGSEGV, SIGBUS, SIGILL, SIGFPE: si_addr; SIGSYS: si_call_addr
    int32_t syscall;   // SIGSYS only
    uint32_t arch;
};

struct Timespec {
    int64_t seconds, nanoseconds;
};

inline long read(int fd, void* data, size_t size) {
    return host_syscall(kRead, fd, reinterpret_cast<long>(data), static_cast<long>(size), 0, 0, 0);
}

inline long write(int fd, const void* data, size_t size) {
    return host_syscall(kWrite, fd, reinterpret_cast<long>(data), static_cast<long>(size), 0, 0, 0);
}

inline long pread64(int fd, void* data, size_t size, uint64_t offset) {
    return host_syscall(kPread64, fd, reinterpret_cast<long>(data), static_cast<long>(size), static_cast<long>(offset),
                        0, 0);
}

inline long pwrite64(int fd, const void* data, size_t size, uint64_t offset) {
    return host_syscall(kPwrite64, fd, reinterpret_cast<long>(data), static_cast<long>(size), static_cast<long>(offset),
                        0, 0);
}

inline long fdatasync(int fd) { return host_syscall(kFdatasync, fd, 0, 0, 0, 0, 0); }

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
