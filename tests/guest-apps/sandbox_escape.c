// The proc platform's sandbox, tested from the inside: the application looks for the kernel's
// own `syscall; ret` (its host system call, in the kernel's text at 16 TiB, which the
// application can read), and jumps there. Syscall User Dispatch lets calls from that text reach
// the host, so only kiln-proc's seccomp allowlist stands between the application and the host:
// an allowed call (write to the console) works, anything else (getpid) kills the instance.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const uint8_t* find_host_syscall(void) {
    const uint8_t* text = (const uint8_t*)0x100000100000;  // the proc kernel's text (abi/kiln/proc.h)
    for (size_t i = 0; i < (1u << 20); ++i)
        if (text[i] == 0x0f && text[i + 1] == 0x05 && text[i + 2] == 0xc3) return text + i;
    return NULL;
}

static long call_at(const uint8_t* at, long number, long a0, long a1, long a2) {
    long result;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("call *%1"
                     : "=a"(result)
                     : "r"(at), "a"(number), "D"(a0), "S"(a1), "d"(a2), "r"(r10)
                     : "rcx", "r11", "memory");
    return result;
}

int main(void) {
    const uint8_t* at = find_host_syscall();
    if (at == NULL) {
        printf("sandbox_escape: no host system call found in the kernel's text\n");
        return 2;
    }
    printf("sandbox_escape: the kernel's host system call is at %p\n", (const void*)at);
    fflush(stdout);
    static const char line[] = "sandbox_escape: write to the console is allowed\n";
    call_at(at, 1 /* write */, 1, (long)line, (long)strlen(line));
    const long pid = call_at(at, 39 /* getpid */, 0, 0, 0);
    printf("sandbox_escape: ESCAPED: the host said our pid is %ld\n", pid);
    return 1;
}
