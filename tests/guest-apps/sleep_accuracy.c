// Sleeps of several lengths, by nanosleep and clock_nanosleep (relative and absolute): never
// early, and late by less than a limit (argument, ms; 50 by default). Also checks that the wall
// clock moves with the monotonic one.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int main(int argc, char** argv) {
    // The lateness allowed, in ms: 50 unless the first argument says otherwise.
    const long long limit = (argc > 1 ? atoll(argv[1]) : 50) * 1000000;
    const long long lengths[] = {1000000, 5000000, 20000000, 100000000};
    long long worst = 0;
    int early = 0;
    for (int i = 0; i < 4; ++i) {
        for (int mode = 0; mode < 3; ++mode) {
            const long long start = ns(CLOCK_MONOTONIC);
            struct timespec d = {lengths[i] / 1000000000, lengths[i] % 1000000000};
            if (mode == 0) {
                nanosleep(&d, NULL);
            } else if (mode == 1) {
                clock_nanosleep(CLOCK_MONOTONIC, 0, &d, NULL);
            } else {
                long long t = start + lengths[i];
                struct timespec abs = {t / 1000000000, t % 1000000000};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
            }
            const long long late = ns(CLOCK_MONOTONIC) - start - lengths[i];
            if (late < 0) early = 1;
            if (late > worst) worst = late;
        }
    }
    const long long wall0 = ns(CLOCK_REALTIME), mono0 = ns(CLOCK_MONOTONIC);
    struct timespec d = {0, 50000000};
    nanosleep(&d, NULL);
    const long long drift = (ns(CLOCK_REALTIME) - wall0) - (ns(CLOCK_MONOTONIC) - mono0);
    printf("sleep_accuracy: worst lateness %lld us, early %d, wall/mono drift %lld us\n", worst / 1000, early,
           drift / 1000);
    return (!early && worst < limit && drift < 1000000 && drift > -1000000) ? 0 : 1;
}
