// Interrupt and exception entry: one 16-byte stub per vector pushes the vector (and a zero error
// code where the CPU pushes none), then the common path saves the registers into an
// InterruptFrame (arch/x86_64/interrupts.h) and calls interrupt_dispatch().
//
// The kernel is built without SSE/x87 code, so interrupt entry saves no FPU state.

#include "arch/x86_64/frame.inc"

        .section .text
        .p2align 4
        .globl interrupt_stubs
interrupt_stubs:
        .set vector, 0
        .rept 256
        .p2align 4
        .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
        .else
        pushq $0
        .endif
        pushq $vector
        jmp interrupt_common
        .set vector, vector + 1
        .endr

interrupt_common:
        PUSH_GENERAL_REGISTERS
        cld
        mov %rsp, %rdi
        mov %rsp, %rbx                  // callee-saved: the frame, across an aligned call
        and $-16, %rsp
        call interrupt_dispatch
        mov %rbx, %rsp
        testb $3, 18*8(%rsp)            // the frame's CS: back to user mode?
        jnz return_to_user
        POP_GENERAL_REGISTERS
        add $16, %rsp                   // vector and error code
        iretq

// ---------------------------------------------------------------------------------------------
// System calls. `syscall` leaves the user RIP in RCX and RFLAGS in R11 and does not switch stacks:
// the entry saves the user RSP, moves to the thread's kernel stack and builds the same frame an
// interrupt from user mode would have. No `swapgs` (emulated on PVM): one vCPU, plain globals.

        .set SYSCALL_VECTOR, 0x100
        .globl syscall_entry
syscall_entry:
        movb $0, pvm_vif_page(%rip)     // PVM: interrupts off (a plain byte elsewhere)
        mov %rsp, cpu_user_rsp(%rip)
        mov cpu_kernel_rsp(%rip), %rsp
        pushq $0x2b                     // ss
        pushq cpu_user_rsp(%rip)        // rsp
        pushq %r11                      // rflags
        pushq $0x33                     // cs
        pushq %rcx                      // rip
        pushq $0                        // error code
        pushq $SYSCALL_VECTOR
        PUSH_GENERAL_REGISTERS
        cld
        mov %rsp, %rdi
        call syscall_dispatch
        // fall through

// The way back to user mode from a syscall, an interrupt or a new thread: RSP = the frame.
// prepare_return_to_user() delivers signals and reschedules, then says how to return:
// 0 = sysretq (RCX and R11 are loaded from the frame's RIP and RFLAGS), 1 = iretq.
        .globl return_to_user
return_to_user:
        mov %rsp, %rdi
        call prepare_return_to_user
        test %eax, %eax
        jnz 1f
        POP_GENERAL_REGISTERS_BUT_RCX_R11
        add $16, %rsp                   // vector, error code
        mov (%rsp), %rcx
        mov 16(%rsp), %r11
        movb $1, pvm_vif_page(%rip)     // PVM: interrupts on, while still on the kernel stack
        mov 24(%rsp), %rsp
        sysretq
1:      POP_GENERAL_REGISTERS
        add $16, %rsp
        iretq

// First instructions of a new application thread: RSP = its user frame.
        .globl thread_start_user
thread_start_user:
        jmp return_to_user
