// Copies to and from user memory that may fault. Each faulting instruction has an exception-table
// entry, so a fault the page-fault handler cannot resolve resumes at the fixup, which returns
// -EFAULT (14).

        .section .text
// int user_copy(void* dst, const void* src, size_t n)
        .globl user_copy
user_copy:
        mov %rdx, %rcx
1:      rep movsb
        xor %eax, %eax
        ret
2:      mov $-14, %eax
        ret
        .pushsection __ex_table, "a"
        .balign 8
        .quad 1b, 2b
        .popsection

// int user_fill_zero(void* dst, size_t n)
        .globl user_fill_zero
user_fill_zero:
        mov %rsi, %rcx
        xor %eax, %eax
3:      rep stosb
        ret
4:      mov $-14, %eax
        ret
        .pushsection __ex_table, "a"
        .balign 8
        .quad 3b, 4b
        .popsection

// long user_string_copy(char* dst, const char* src, size_t capacity)
// Returns the length copied (without NUL), -14 on a fault, or -36 if no NUL within capacity-1.
        .globl user_string_copy
user_string_copy:
        xor %eax, %eax
5:      cmp %rdx, %rax
        jae 7f
6:      movb (%rsi,%rax), %cl
        movb %cl, (%rdi,%rax)
        test %cl, %cl
        jz 8f
        inc %rax
        jmp 5b
7:      mov $-36, %rax
        ret
8:      ret
9:      mov $-14, %rax
        ret
        .pushsection __ex_table, "a"
        .balign 8
        .quad 6b, 9b
        .popsection
