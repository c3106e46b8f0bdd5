// Linux's x86-64 signal context and user context (arch/x86/include/uapi/asm/sigcontext.h,
// asm/ucontext.h), and their correspondence with the kernel's InterruptFrame. Two users: the
// Linux personality writes them for the application's signal handlers (signal.cpp), and the proc
// backend reads them from the host's signals (platform/proc).
#pragma once

#include <stdint.h>

#include "arch/x86_64/interrupts.h"

namespace kiln::linux {

struct SigContext {
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2;
    uint64_t fpstate;
    uint64_t reserved[8];
};
static_assert(sizeof(SigContext) == 256);

struct UContext {
    uint64_t flags;
    uint64_t link;
    uint64_t ss_sp;
    int32_t ss_flags;
    int32_t pad;
    uint64_t ss_size;
    SigContext mcontext;
    uint64_t sigmask;
};
static_assert(sizeof(UContext) == 304);

// The general registers, RIP, RSP and RFLAGS of a frame into a context, and back.
inline void registers_to_context(const arch::InterruptFrame& f, SigContext& c) {
    c.r8 = f.r8, c.r9 = f.r9, c.r10 = f.r10, c.r11 = f.r11, c.r12 = f.r12, c.r13 = f.r13, c.r14 = f.r14, c.r15 = f.r15;
    c.rdi = f.rdi, c.rsi = f.rsi, c.rbp = f.rbp, c.rbx = f.rbx, c.rdx = f.rdx, c.rax = f.rax, c.rcx = f.rcx;
    c.rsp = f.rsp, c.rip = f.rip, c.eflags = f.rflags;
}

inline void registers_from_context(const SigContext& c, arch::InterruptFrame& f) {
    f.r8 = c.r8, f.r9 = c.r9, f.r10 = c.r10, f.r11 = c.r11, f.r12 = c.r12, f.r13 = c.r13, f.r14 = c.r14, f.r15 = c.r15;
    f.rdi = c.rdi, f.rsi = c.rsi, f.rbp = c.rbp, f.rbx = c.rbx, f.rdx = c.rdx, f.rax = c.rax, f.rcx = c.rcx;
    f.rsp = c.rsp, f.rip = c.rip, f.rflags = c.eflags;
}

}  // namespace kiln::linux
