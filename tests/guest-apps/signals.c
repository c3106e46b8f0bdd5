// Signal handlers: tgkill to self, SIGSEGV caught and survived with siglongjmp, sigaltstack,
// masks, the FPU state a handler clobbers coming back intact, and pause() ended by a signal
// another thread sends.
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int got_usr1;
static sigjmp_buf jump;
static volatile void* fault_address;

static void on_usr1(int sig) {
    got_usr1 = sig;
    volatile double clobber = 3.25;  // uses xmm registers inside the handler
    (void)clobber;
}

static void on_segv(int sig, siginfo_t* info, void* uc) {
    (void)sig;
    (void)uc;
    fault_address = info->si_addr;
    siglongjmp(jump, 1);
}

static pid_t main_tid;

static void* send_usr1_later(void* unused) {
    (void)unused;
    struct timespec wait = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
    nanosleep(&wait, NULL);
    syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
    return NULL;
}

// pause() returns only after a handler ran, with EINTR.
static int pause_until_signalled(void) {
    got_usr1 = 0;
    main_tid = (pid_t)syscall(SYS_gettid);
    pthread_t sender;
    if (pthread_create(&sender, NULL, send_usr1_later, NULL) != 0) return 0;
    const int r = pause();
    const int saved_errno = errno;
    pthread_join(sender, NULL);
    return r == -1 && saved_errno == EINTR && got_usr1 == SIGUSR1;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    volatile double keep = 1.5;
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
    if (got_usr1 != SIGUSR1 || keep != 1.5) return 1;

    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    got_usr1 = 0;
    sigprocmask(SIG_BLOCK, &block, NULL);
    raise(SIGUSR1);
    if (got_usr1) return 2;  // blocked: not yet
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    if (got_usr1 != SIGUSR1) return 3;  // delivered on unblock

    if (!pause_until_signalled()) return 6;

    static char altstack[65536];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack), .ss_flags = 0};
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(jump, 1) == 0) {
        *(volatile int*)0x1234 = 1;
        return 4;
    }
    if (fault_address != (void*)0x1234) return 5;
    puts("signals: ok");
    return 0;
}
