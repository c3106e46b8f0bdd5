// System calls made without libc, from everywhere an application can make them: inline in its
// own code, from a page it wrote at run time, from a signal handler. Each must reach the Kiln
// kernel (whose pid for the application is 1), never the host. Prints "raw_syscalls: ok".
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static long raw_getpid(void) {
    long result;
    __asm__ volatile("syscall" : "=a"(result) : "a"(39L) : "rcx", "r11", "memory");
    return result;
}

static volatile long from_handler = -1;

static void on_signal(int signal) {
    (void)signal;
    from_handler = raw_getpid();
}

int main(void) {
    int failures = 0;
    const long inline_pid = raw_getpid();
    if (inline_pid != 1) {
        printf("raw_syscalls: inline getpid returned %ld\n", inline_pid);
        ++failures;
    }

    // mov $39,%eax; syscall; ret, written into a fresh page and then made executable.
    static const unsigned char code[] = {0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xc3};
    unsigned char* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memcpy(page, code, sizeof(code));
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) {
        perror("mprotect");
        return 1;
    }
    const long generated_pid = ((long (*)(void))page)();
    if (generated_pid != 1) {
        printf("raw_syscalls: getpid from a generated page returned %ld\n", generated_pid);
        ++failures;
    }

    signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    if (from_handler != 1) {
        printf("raw_syscalls: getpid in a signal handler returned %ld\n", from_handler);
        ++failures;
    }
    if (failures == 0) printf("raw_syscalls: ok\n");
    return failures;
}
