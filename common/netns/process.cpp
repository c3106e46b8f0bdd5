#include "netns/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <utility>

#include "netns/error.h"

namespace kiln::netns {

namespace {

std::string describe(const std::vector<std::string>& argv) {
    std::string text;
    for (const auto& arg : argv) text += (text.empty() ? "" : " ") + arg;
    return text;
}

int shell_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

// What the child reports through the exec pipe when it fails before exec succeeds.
struct ChildFailure {
    int stage;  // 0: setns, 1: exec
    int error;
};

[[noreturn]] void child_fail(int pipe, int stage) {
    const ChildFailure failure{stage, errno};
    (void)!::write(pipe, &failure, sizeof(failure));
    ::_exit(127);
}

}  // namespace

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)),
      status_(std::exchange(other.status_, std::nullopt)) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        finish();
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        status_ = std::exchange(other.status_, std::nullopt);
    }
    return *this;
}

Process::~Process() { finish(); }

void Process::finish() {
    if (pid_ > 0 && !status_) {
        ::kill(pid_, SIGKILL);
        reap();
    }
}

void Process::reap() {
    int status = 0;
    pid_t result;
    do {
        result = ::waitpid(pid_, &status, 0);
    } while (result < 0 && errno == EINTR);
    status_ = result == pid_ ? shell_status(status) : -1;
    pidfd_.reset();
}

bool Process::running() {
    if (pid_ <= 0 || status_) return false;
    return !wait_for(std::chrono::milliseconds(0)).has_value();
}

int Process::wait() {
    if (pid_ <= 0) throw NetnsError("wait: no process");
    if (!status_) reap();
    return *status_;
}

std::optional<int> Process::wait_for(std::chrono::milliseconds timeout) {
    if (pid_ <= 0) throw NetnsError("wait: no process");
    if (status_) return status_;
    pollfd p{pidfd_.get(), POLLIN, 0};
    int n;
    do {
        n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n <= 0) return std::nullopt;
    reap();
    return status_;
}

void Process::signal(int number) {
    if (pid_ > 0 && !status_) ::kill(pid_, number);
}

Process spawn_process(int netns_fd, const std::vector<std::string>& argv, const SpawnOptions& options,
                      const std::string& where) {
    if (argv.empty()) throw NetnsError(where + ": run: empty command");
    const std::string what = where + ": run '" + describe(argv) + "'";
    // Everything the child needs is prepared before fork: between fork and exec it may only make
    // async-signal-safe calls (the parent may have other threads holding locks).
    std::vector<char*> args;
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) throw system_error(what + ": pipe");
    UniqueFd report_read(report[0]), report_write(report[1]);
    const pid_t parent = ::getpid();

    const pid_t pid = ::fork();
    if (pid < 0) throw system_error(what + ": fork");
    if (pid == 0) {
        if (options.kill_with_parent) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent) ::_exit(127);
        }
        if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) child_fail(report[1], 0);
        if (options.stdout_fd >= 0) ::dup2(options.stdout_fd, STDOUT_FILENO);
        if (options.stderr_fd >= 0) ::dup2(options.stderr_fd, STDERR_FILENO);
        sigset_t all;
        sigemptyset(&all);
        ::sigprocmask(SIG_SETMASK, &all, nullptr);
        ::execvp(args[0], args.data());
        child_fail(report[1], 1);
    }
    report_write.reset();
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": call the system call directly.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    Process process(pid, std::move(pidfd));
    if (!process.pidfd_.valid()) throw system_error(what + ": pidfd_open");
    ChildFailure failure{};
    ssize_t n;
    do {
        n = ::read(report_read.get(), &failure, sizeof(failure));
    } while (n < 0 && errno == EINTR);
    if (n == sizeof(failure)) {
        process.wait();
        throw system_error(what + (failure.stage == 0 ? ": setns" : ""), failure.error);
    }
    return process;  // the pipe closed on exec: the command is running
}

CommandResult run_process(int netns_fd, const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::string& where) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw system_error(where + ": pipe");
    UniqueFd out_read(out[0]), out_write(out[1]);
    SpawnOptions options;
    options.stdout_fd = options.stderr_fd = out_write.get();
    Process process = spawn_process(netns_fd, argv, options, where);
    out_write.reset();

    CommandResult result;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buffer[4096];
    for (bool open = true; open;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            result.timed_out = true;
            break;
        }
        pollfd p{out_read.get(), POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n < 0 && errno != EINTR) throw system_error(where + ": poll");
        if (n <= 0) continue;
        const ssize_t got = ::read(out_read.get(), buffer, sizeof(buffer));
        if (got > 0)
            result.output.append(buffer, static_cast<size_t>(got));
        else if (got == 0 || errno != EINTR)
            open = false;  // end of output: every writer is gone
    }
    if (result.timed_out) {
        process.signal(SIGKILL);
        process.wait();
        return result;
    }
    // The output ended; the command may still be on its way out.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    const auto status = process.wait_for(std::max(left, std::chrono::milliseconds(0)));
    if (!status) {
        result.timed_out = true;
        return result;  // ~Process kills it
    }
    result.status = *status;
    return result;
}

}  // namespace kiln::netns
