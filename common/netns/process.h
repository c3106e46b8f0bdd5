// A child process started inside a network namespace (Namespace::spawn). The child enters the
// namespace with setns() between fork and exec, the way `ip netns exec` does, minus the private
// mount namespace and /sys remount that `ip` adds: kiln-vmm, ping and curl need none of that.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "host/unique_fd.h"

namespace kiln::netns {

struct SpawnOptions {
    // Where the child's stdout and stderr go; -1 keeps ours.
    int stdout_fd = -1;
    int stderr_fd = -1;
    // The child gets SIGKILL when the thread that spawned it ends (PR_SET_PDEATHSIG): a test that
    // crashes leaves no kiln-vmm behind holding its namespace alive. Spawn from a thread that
    // lives as long as the child should.
    bool kill_with_parent = true;
};

class Process {
  public:
    Process() = default;
    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    // A child still running is killed (SIGKILL) and reaped.
    ~Process();

    pid_t pid() const { return pid_; }
    // True until the child has exited (and been reaped by wait()/wait_for()).
    bool running();
    // Waits for the child to end: its exit code, or 128 + the signal that ended it (as a shell).
    int wait();
    // As wait(), but gives up after `timeout` (nullopt; the child keeps running).
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    void signal(int number);

  private:
    friend Process spawn_process(int, const std::vector<std::string>&, const SpawnOptions&, const std::string&);
    Process(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
    void reap();
    void finish();

    pid_t pid_ = -1;
    UniqueFd pidfd_;  // readable once the child has exited
    std::optional<int> status_;
};

// Starts argv[0] (searched in PATH) in the network namespace `netns_fd` (-1: the caller's).
// Throws NetnsError "<where>: run 'argv[0]': <reason>" if it cannot be started.
Process spawn_process(int netns_fd, const std::vector<std::string>& argv, const SpawnOptions& options,
                      const std::string& where);

struct CommandResult {
    int status = -1;  // exit code or 128 + signal; -1 if it timed out
    bool timed_out = false;
    std::string output;  // stdout and stderr, interleaved
};

// Runs a command to completion, capturing its output; kills it after `timeout`. (A command that
// leaves a background process holding its output runs into the timeout.)
CommandResult run_process(int netns_fd, const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::string& where);

}  // namespace kiln::netns
