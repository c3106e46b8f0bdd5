// Reports the guest's clocks over TCP, for the snapshot tests: each connection gets one line,
//   <realtime ns> <monotonic ns> <sleeper woke 0|1> <sleeper lateness ns, monotonic> <lateness, realtime>
// A thread started with the program sleeps `seconds` (clock_nanosleep, CLOCK_MONOTONIC) so a
// test can snapshot and restore the VM while the sleep is in progress.
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

static volatile int woke;
static volatile long long late_monotonic, late_realtime;
static long long sleep_ns;

static void* sleeper(void* arg) {
    (void)arg;
    const long long start_m = ns(CLOCK_MONOTONIC), start_r = ns(CLOCK_REALTIME);
    const long long deadline = start_m + sleep_ns;
    struct timespec abs = {deadline / 1000000000, deadline % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL) != 0) {
    }
    late_monotonic = ns(CLOCK_MONOTONIC) - deadline;
    late_realtime = ns(CLOCK_REALTIME) - (start_r + sleep_ns);
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
        char line[160];
        const int n = snprintf(line, sizeof(line), "%lld %lld %d %lld %lld\n", ns(CLOCK_REALTIME),
                               ns(CLOCK_MONOTONIC), woke, late_monotonic, late_realtime);
        if (write(client, line, (size_t)n) != n) perror("clock_probe: write");
        close(client);
    }
}
