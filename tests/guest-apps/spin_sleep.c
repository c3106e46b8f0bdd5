// Preemption: a thread that spins forever must not keep a sleeping thread from waking on time.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_int stop;

static void* spin(void* arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
    }
    return NULL;
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int main(int argc, char** argv) {
    // The lateness allowed, in ms: 50 unless the first argument says otherwise.
    const long long limit = (argc > 1 ? atoll(argv[1]) : 50) * 1000000;
    pthread_t spinner;
    pthread_create(&spinner, NULL, spin, NULL);
    long long worst = 0;
    int early = 0;
    for (int i = 0; i < 10; ++i) {
        const long long start = now_ns();
        struct timespec d = {0, 20 * 1000000};
        nanosleep(&d, NULL);
        const long long late = now_ns() - start - 20 * 1000000;
        if (late < 0) early = 1;
        if (late > worst) worst = late;
    }
    atomic_store(&stop, 1);
    pthread_join(spinner, NULL);
    printf("spin_sleep: worst lateness %lld us, early %d\n", worst / 1000, early);
    return (!early && worst < limit) ? 0 : 1;
}
