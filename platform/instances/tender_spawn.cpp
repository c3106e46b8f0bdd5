#include "instances/tender_spawn.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace kiln::instances {

namespace {

struct SpawnRequest {
    char* const* argv;
    TenderFds fds;
    sigset_t mask;  // the tender's: none blocked (kilnd's threads keep SIGCHLD for the reconciler)
    // What failed in the child, and its errno, written into the parent's memory (CLONE_VM).
    const char* failed = nullptr;
    int error = 0;
};

// "0": the process that writes it.
bool join_cgroups(const TenderFds& fds) {
    for (int i = 0; i < fds.cgroup_count; ++i)
        if (::write(fds.cgroup_procs[i], "0", 1) != 1) return false;
    return true;
}

// The child of spawn_tender, sharing kilnd's memory until its exec: only system calls, no
// allocation or locks, and whatever failed is reported through `error`.
int exec_tender(void* arg) {
    auto& request = *static_cast<SpawnRequest*>(arg);
    // No kilnd handler may run here, on kilnd's memory: every caught signal back to its default.
    for (int signal = 1; signal < NSIG; ++signal) {
        struct sigaction action {};
        if (::sigaction(signal, nullptr, &action) == 0 && action.sa_handler != SIG_DFL &&
            action.sa_handler != SIG_IGN) {
            action.sa_handler = SIG_DFL;
            ::sigaction(signal, &action, nullptr);
        }
    }
    // Its own session (kilnd's end is not its end), logs as stdout and stderr, and the private
    // network's namespace, where its tap is.
    ::setsid();
    if (::dup2(request.fds.stdin_fd, 0) < 0 || ::dup2(request.fds.stdout_fd, 1) < 0 ||
        ::dup2(request.fds.stderr_fd, 2) < 0 || (request.fds.orders >= 0 && ::dup2(request.fds.orders, 3) < 0)) {
        request.failed = "its file descriptors";
    } else if (request.fds.orders == 3 && ::fcntl(3, F_SETFD, 0) != 0) {  // dup2 onto itself keeps CLOEXEC
        request.failed = "its file descriptors";
    } else if (::close_range(request.fds.orders >= 0 ? 4 : 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        // Nothing else of kilnd's crosses the exec: not a client's connection to the API (httplib
        // accepts without CLOEXEC), which a tender that outlives kilnd would hold open, its client
        // waiting for an answer from nobody; not the private namespace's sockets.
        request.failed = "closing kilnd's other file descriptors";
    } else if (request.fds.netns >= 0 && ::setns(request.fds.netns, CLONE_NEWNET) != 0) {
        request.failed = "setns into the private network";
    } else if (!join_cgroups(request.fds)) {
        request.failed = "joining its instance's cgroup";
    } else {
        ::sigprocmask(SIG_SETMASK, &request.mask, nullptr);
        ::execv(request.argv[0], request.argv);
        request.failed = "exec";
    }
    request.error = errno;
    ::_exit(127);
}

}  // namespace

pid_t spawn_tender(char* const* argv, TenderFds fds) {
    constexpr size_t kStack = 64 * 1024;
    std::vector<char> stack(kStack);
    SpawnRequest request{argv, fds, {}, nullptr, 0};
    ::sigemptyset(&request.mask);
    sigset_t all, ours;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &ours);  // nothing runs a handler in the child
    const pid_t pid = ::clone(exec_tender, stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &request);
    const int clone_error = errno;
    ::pthread_sigmask(SIG_SETMASK, &ours, nullptr);
    if (pid < 0) {
        errno = clone_error;
        return -1;
    }
    if (request.failed != nullptr)
        ::dprintf(fds.stderr_fd, "kilnd: %s %s: %s\n", request.failed, argv[0], std::strerror(request.error));
    return pid;
}

}  // namespace kiln::instances
