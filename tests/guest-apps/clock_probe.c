// Reports the guest's clocks over TCP, for the snapshot tests: each connection gets one line,
//   <realtime ns> <monotonic ns> <sleeper woke 0|1> <sleeper lateness ns, monotonic>
//   <wall clock's step against the monotonic one while the sleeper slept: lowest, highest ns>
// A thread started with the program sleeps `seconds` (clock_nanosleep, CLOCK_MONOTONIC) so a
// test can snapshot and restore the VM while the sleep is in progress.
//
// The step is bracketed, not measured with two clock reads in a row: the thread can be preempted
// between those (hundreds of microseconds on a busy host), and such a gap looked like a wall clock
// that had stepped back.
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

// The wall clock minus the monotonic one lies in [lowest, highest]: a realtime read between two
// monotonic reads. The narrowest of a few tries.
struct offset {
    long long lowest, highest;
};

static struct offset realtime_offset(void) {
    struct offset best = {0, 0};
    for (int i = 0; i < 16; i++) {
        const long long before = ns(CLOCK_MONOTONIC), wall = ns(CLOCK_REALTIME), after = ns(CLOCK_MONOTONIC);
        const struct offset o = {wall - after, wall - before};
        if (i == 0 || o.highest - o.lowest < best.highest - best.lowest) best = o;
    }
    return best;
}

static volatile int woke;
static volatile long long late_monotonic, step_lowest, step_highest;
static long long sleep_ns;

static void* sleeper(void* arg) {
    (void)arg;
    const struct offset start = realtime_offset();
    const long long deadline = ns(CLOCK_MONOTONIC) + sleep_ns;
    struct timespec abs = {deadline / 1000000000, deadline % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) != 0) {
    }
    late_monotonic = ns(CLOCK_MONOTONIC) - deadline;
    const struct offset end = realtime_offset();
    step_lowest = end.lowest - start.highest;
    step_highest = end.highest - start.lowest;
    woke = 1;
    return NULL;
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: clock_probe PORT SECONDS\n");
        return 2;
    }
    sleep_ns = atoll(argv[2]) * 1000000000ll;
    pthread_t thread;
    pthread_create(&thread, NULL, sleeper, NULL);

    const int server = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    if (bind(server, (struct sockaddr*)&address, sizeof(address)) != 0 || listen(server, 16) != 0) {
        perror("clock_probe: bind/listen");
        return 1;
    }
    for (;;) {
        const int client = accept(server, NULL, NULL);
        if (client < 0) continue;
        char line[200];
        const int n = snprintf(line, sizeof(line), "%lld %lld %d %lld %lld %lld\n", ns(CLOCK_REALTIME),
                               ns(CLOCK_MONOTONIC), woke, late_monotonic, step_lowest, step_highest);
        if (write(client, line, (size_t)n) != n) perror("clock_probe: write");
        close(client);
    }
}
