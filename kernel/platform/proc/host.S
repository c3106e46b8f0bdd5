// The proc backend's system calls to the host kernel (platform/proc/host.h). These two
// `syscall` instructions are the only ones in the Kiln kernel.

        .section .text
// long host_syscall(long number, long a0, long a1, long a2, long a3, long a4, long a5)
        .globl host_syscall
host_syscall:
        mov %rdi, %rax
        mov %rsi, %rdi
        mov %rdx, %rsi
        mov %rcx, %rdx
        mov %r8, %r10
        mov %r9, %r8
        mov 8(%rsp), %r9
        syscall
        ret

// The sa_restorer of the kernel's host signal handlers.
        .globl host_signal_restorer
host_signal_restorer:
        mov $15, %eax                   // rt_sigreturn
        syscall
        ud2
