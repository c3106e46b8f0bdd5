// The proc build's entry code: kiln-proc's jump into the kernel, and the way back to the
// application, which on proc is a plain jump (no privilege level to drop).

#include "arch/x86_64/frame.inc"
#include "arch/x86_64/layout.h"

// The entry point kiln-proc jumps to (abi/kiln/proc.h): its virtual address, in a note.
        .section .note.kiln, "a"
        .p2align 2
        .long 5, 8, 0x4b02              // namesz, descsz, KILN_ELFNOTE_PROC_ENTRY
        .asciz "Kiln"
        .p2align 2
        .quad kiln_proc_entry

        .section .text
// rdi = start_info's physical address, rsi = the handoff's; both pass through to C++. A restore
// (rdi = 0) must not touch the boot stack, which the snapshot's idle thread still uses: it sets
// up the host on a stack of its own, then jumps into the parked kernel (control.cpp).
        .globl kiln_proc_entry
kiln_proc_entry:
        xor %ebp, %ebp
        test %rdi, %rdi
        jz 1f
        lea boot_stack_top(%rip), %rsp
        call kiln_proc_start
        ud2
1:      lea resume_stack_top(%rip), %rsp
        mov %rsi, %rdi
        call kiln_proc_resume
        ud2

// int proc_park_save(ParkContext* rdi): the callee-saved registers, the stack and the return
// address, as setjmp keeps them; returns 0. proc_park_jump(context) returns from that call
// again, with 1, in whatever process the memory now runs in.
        .globl proc_park_save
proc_park_save:
        mov %rbx, 0(%rdi)
        mov %rbp, 8(%rdi)
        mov %r12, 16(%rdi)
        mov %r13, 24(%rdi)
        mov %r14, 32(%rdi)
        mov %r15, 40(%rdi)
        lea 8(%rsp), %rax
        mov %rax, 48(%rdi)
        mov (%rsp), %rax
        mov %rax, 56(%rdi)
        xor %eax, %eax
        ret

        .globl proc_park_jump
proc_park_jump:
        mov 0(%rdi), %rbx
        mov 8(%rdi), %rbp
        mov 16(%rdi), %r12
        mov 24(%rdi), %r13
        mov 32(%rdi), %r14
        mov 40(%rdi), %r15
        mov 48(%rdi), %rsp
        mov $1, %eax
        jmp *56(%rdi)

// The way back to the application from a system call, an exception or a new thread: RSP = the
// frame. As after sysretq, RCX and R11 hold RIP and RFLAGS (prepare_return_to_user parks the
// real ones below the red zone when every register must come back: user_return_trampoline).
        .globl thread_start_user
thread_start_user:
        .globl return_to_user
return_to_user:
        mov %rsp, %rdi
        call prepare_return_to_user     // returns with interrupts off
// From here to proc_return_jump, a host signal that finds interrupts off is not lost: the
// handler notes it and restarts here (interrupts.cpp), where it is seen and delivered before the
// application runs. The frame is always at the top of the thread's kernel stack.
        .globl proc_return_restart
proc_return_restart:
        cmpb $0, proc_interrupt_flag+1(%rip)    // a device signal pending?
        jne return_to_user
        POP_GENERAL_REGISTERS_BUT_RCX_R11
        add $16, %rsp                   // vector, error code
        mov (%rsp), %rcx
        mov 16(%rsp), %r11
        pushq %r11
        popfq
        mov 24(%rsp), %rsp
// A signal here finds the application's registers but RIP, which is in RCX.
        .globl proc_return_jump
proc_return_jump:
        jmp *%rcx

// Where the host signal handlers send the application's events (interrupts.cpp enter_kernel):
// RSP = RDI = the frame at the top of the thread's kernel stack, interrupts off.
        .globl proc_syscall_entry
proc_syscall_entry:
        cld
        call proc_trapped_syscall       // rewrites the site (syscall_rewrite.cpp), then the call
        jmp return_to_user

// A rewritten site's stub jumps here (syscall_rewrite.cpp): EAX = the number, RCX = the return
// address, everything else the application's, on the application's stack, which is left as it
// is. The same frame as the SYSCALL entry of the other backends.
        .globl proc_fast_syscall
proc_fast_syscall:
        mov %rsp, cpu_user_rsp(%rip)
        mov cpu_kernel_rsp(%rip), %rsp
        pushq $0x2b                     // ss
        pushq cpu_user_rsp(%rip)        // rsp
        pushfq                          // rflags: SYSCALL would leave them in R11
        mov (%rsp), %r11
        pushq $0x33                     // cs
        pushq %rcx                      // rip
        pushq $0                        // error code
        pushq $0x100                    // vector: a system call
        PUSH_GENERAL_REGISTERS
        cld
        mov %rsp, %rdi
        call syscall_dispatch
        jmp return_to_user

        .globl proc_interrupt_entry
proc_interrupt_entry:
        cld
        call interrupt_dispatch
        jmp return_to_user

// The IDT's stubs and the SYSCALL entry of the other backends: the shared code still installs
// them (arch::init_cpu_tables, linux::init_syscalls), the proc backend ignores the install, and
// nothing ever jumps here.
        .globl interrupt_stubs
        .globl syscall_entry
interrupt_stubs:
syscall_entry:
        ud2

        .section .bss
        .p2align 12
// Never loaded into a CPU: the page tables of the application's half are the kernel's records
// on proc, and the host's mappings mirror them. kernel-proc.ld gives `boot_pml4` its physical
// address, as boot.S's is.
        .globl proc_boot_pml4
proc_boot_pml4:
        .skip 4096
        .globl boot_stack
boot_stack:
        .skip 16384
        .globl boot_stack_top
boot_stack_top:
resume_stack:
        .skip 8192
resume_stack_top:
