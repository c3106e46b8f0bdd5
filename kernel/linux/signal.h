// Signals: handlers, masks, delivery with Linux-compatible frames (rt_sigframe), sigreturn.
// Go preempts goroutines with signals and rewrites the saved context, so the frame layout is
// Linux's own, FPU/AVX state included.
#pragma once

#include <stdint.h>

#include "arch/x86_64/interrupts.h"
#include "linux/thread_info.h"

namespace kiln::linux {

inline constexpr int kSigIll = 4, kSigTrap = 5, kSigAbrt = 6, kSigBus = 7, kSigFpe = 8, kSigKill = 9, kSigSegv = 11,
                     kSigPipe = 13, kSigChld = 17, kSigCont = 18, kSigStop = 19, kSigUrg = 23, kSigWinch = 28;

// Internal: a blocking call interrupted by a signal; becomes EINTR, or a restart with SA_RESTART.
inline constexpr int64_t kErestartsys = -512;

struct SignalInfo {
    int signo;
    int code;
    uint64_t address;  // faults
};

void send_signal(ThreadInfo& thread, int signo);
struct Process;
void send_signal_to_process(Process& p, int signo);

// A fault in user mode (page fault, invalid opcode...): delivered at once, or the application
// ends if it is blocked, ignored or unhandled.
void force_signal(const SignalInfo& info, arch::InterruptFrame& frame);

// Called on the way back to user mode: sets up the handler of one pending signal, if any.
// Returns true if it did something (the caller loops).
bool deliver_pending_signal(arch::InterruptFrame& frame);

}  // namespace kiln::linux
