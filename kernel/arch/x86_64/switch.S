// What every backend shares of the entry code: switching kernel stacks, the first instructions
// of a kernel thread, and the user-mode trampoline for returns that must restore every register.

        .section .text
// PVM can only enter user mode with sysretq, which takes RIP and RFLAGS from RCX and R11 (and
// proc returns the same way, with a jump through RCX: platform/proc/entry.S). To
// resume user code at an arbitrary point with every register intact, the kernel stores the real
// RCX, R11 and RIP just below the user's red zone and "returns" here, in user mode.
        .globl user_return_trampoline
user_return_trampoline:
        popq %rcx
        popq %r11
        ret $128
        .globl user_return_trampoline_end
user_return_trampoline_end:

// void context_switch(uint64_t* save_rsp, uint64_t new_rsp)
        .globl context_switch
context_switch:
        pushq %rbp
        pushq %rbx
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        mov %rsp, (%rdi)
        mov %rsi, %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret

// First instructions of a new kernel thread: R12 = entry, R13 = argument.
        .globl thread_start_kernel
thread_start_kernel:
        call thread_enable_interrupts
        mov %r13, %rdi
        call *%r12
        call thread_exit_kernel
        ud2
