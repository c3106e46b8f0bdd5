// System-call round trip: N getppid calls, timed with the monotonic clock. Prints ns per call.
// `syscall_bench N` calls syscall(SYS_getppid) (the number in a register); `syscall_bench N libc`
// calls libc's getppid() wrapper (`mov $110,%eax; syscall` in glibc). The same binary runs on
// the host and in the guest (bench/apps, bench/proc).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
    const long n = argc > 1 ? atol(argv[1]) : 1000000;
    const int wrapper = argc > 2 && strcmp(argv[2], "libc") == 0;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (wrapper)
        for (long i = 0; i < n; ++i) getppid();
    else
        for (long i = 0; i < n; ++i) syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    const double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("getppid%s: %ld calls, %.1f ns per call\n", wrapper ? " (libc)" : "", n, ns);
    return 0;
}
