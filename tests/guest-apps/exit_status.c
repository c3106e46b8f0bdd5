// Exit statuses: from main's return, exit(), a thread calling exit(), and a fatal signal.
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void* exit_from_thread(void* arg) {
    (void)arg;
    exit(42);
}

int main(int argc, char** argv) {
    const char* how = argc > 1 ? argv[1] : "return";
    if (strcmp(how, "exit") == 0) exit(7);
    if (strcmp(how, "thread") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, exit_from_thread, NULL);
        for (;;) pause();
    }
    if (strcmp(how, "segv") == 0) *(volatile int*)16 = 1;
    if (strcmp(how, "abort") == 0) abort();
    return 5;
}
