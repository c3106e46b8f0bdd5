// The vDSO: libc finds it (AT_SYSINFO_EHDR) and reads the clocks through it, and its answers
// agree with the kernel's system calls. `vdso_check` checks and prints "vdso_check: ok";
// between its "calls begin" and "calls end" lines it reads every clock 1,000 times through libc,
// which under kiln.strace=1 must show no system call (the test looks). `vdso_check bench N`
// prints ns per clock_gettime through libc and through the raw system call.
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
#define CHECK(cond, ...)                         \
    do {                                         \
        if (!(cond)) {                           \
            printf("vdso_check: FAILED %s: ", #cond); \
            printf(__VA_ARGS__);                 \
            printf("\n");                        \
            ++failures;                          \
        }                                        \
    } while (0)

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

static int64_t kernel_ns(clockid_t clock) {
    struct timespec t;
    syscall(SYS_clock_gettime, clock, &t);
    return ns_of(t);
}

static void say(const char* line) { (void)!write(1, line, strlen(line)); }

static double bench(long n, int raw) {
    struct timespec a, b, t;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; ++i) {
        if (raw)
            syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
        else
            clock_gettime(CLOCK_MONOTONIC, &t);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(ns_of(b) - ns_of(a)) / n;
}

int main(int argc, char** argv) {
    if (argc > 2 && strcmp(argv[1], "bench") == 0) {
        const long n = atol(argv[2]);
        printf("clock_gettime: libc %.1f ns, system call %.1f ns per call\n", bench(n, 0), bench(n / 10 + 1, 1));
        return 0;
    }
    CHECK(getauxval(AT_SYSINFO_EHDR) != 0, "no AT_SYSINFO_EHDR");
    // Each clock through libc lies between two readings of the kernel's.
    const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME,
                                CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE};
    for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); ++i) {
        const int64_t before = kernel_ns(clocks[i]);
        struct timespec t;
        CHECK(clock_gettime(clocks[i], &t) == 0, "clock %d", clocks[i]);
        const int64_t after = kernel_ns(clocks[i]);
        CHECK(before <= ns_of(t) && ns_of(t) <= after, "clock %d: %lld not within [%lld, %lld]", clocks[i],
              (long long)ns_of(t), (long long)before, (long long)after);
        struct timespec res;
        CHECK(clock_getres(clocks[i], &res) == 0 && res.tv_sec == 0 && res.tv_nsec > 0, "clock_getres %d", clocks[i]);
    }
    struct timeval tv;
    const int64_t before = kernel_ns(CLOCK_REALTIME) / 1000;
    CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
    const int64_t after = kernel_ns(CLOCK_REALTIME) / 1000;
    const int64_t us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    CHECK(before <= us && us <= after, "gettimeofday %lld not within [%lld, %lld]", (long long)us, (long long)before,
          (long long)after);
    const time_t now = time(NULL);
    CHECK(now >= before / 1000000 && now <= after / 1000000 + 1, "time %lld", (long long)now);
    CHECK(sched_getcpu() == 0, "sched_getcpu %d", sched_getcpu());
    // A clock the vDSO does not keep goes to the kernel.
    struct timespec cpu;
    CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) == 0, "CLOCK_PROCESS_CPUTIME_ID");
    // Monotonic never goes back.
    struct timespec last, t;
    clock_gettime(CLOCK_MONOTONIC, &last);
    for (int i = 0; i < 100000; ++i) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (ns_of(t) < ns_of(last)) {
            CHECK(0, "monotonic went back from %lld to %lld", (long long)ns_of(last), (long long)ns_of(t));
            break;
        }
        last = t;
    }

    say("vdso_check: calls begin\n");
    for (int i = 0; i < 1000; ++i) {
        clock_gettime(CLOCK_MONOTONIC, &t);
        clock_gettime(CLOCK_REALTIME, &t);
        gettimeofday(&tv, NULL);
        (void)time(NULL);
        (void)sched_getcpu();
    }
    say("vdso_check: calls end\n");
    if (failures == 0) printf("vdso_check: ok\n");
    return failures == 0 ? 0 : 1;
}
