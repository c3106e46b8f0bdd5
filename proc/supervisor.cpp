// kiln-proc's supervisor: the part of the tender outside the sandbox. It watches the instance
// (watchdog, SIGTERM and SIGINT, the exit status) on the main thread, and serves the control
// socket and the kernel's channel on an event loop thread: the kernel's messages (ready, parked,
// resumed) and the socket's requests, which it answers with the kernel's help. Without a control
// socket there are no requests, and the main thread reads the kernel's messages itself: no
// thread to start beside the instance's boot, nor to join after its end.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>

#include "kiln/hostcall.h"
#include "tender.h"
#include "util/error.h"

namespace kiln::proc {

using vmm::system_error;
using vmm::VmmError;

namespace {

constexpr int kKernelAnswerMs = 5000;  // a parked kernel answers in microseconds; a stuck one never

std::string signal_name(int signal) {
    const char* name = sigabbrev_np(signal);
    return name != nullptr ? std::string("SIG") + name : std::to_string(signal);
}

}  // namespace

int Tender::supervise(pid_t instance) {
    instance_ = instance;
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    UniqueFd signals(::signalfd(-1, &stop_signals, SFD_CLOEXEC));
    UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, instance, 0)));
    if (!signals.valid() || !exited.valid()) {
        ::kill(instance, SIGKILL);
        throw system_error("supervising the instance");
    }
    if (!options_.control.empty()) {
        try {
            loop_ = std::make_unique<vmm::EventLoop>();
            loop_->add(channel_.get(), EPOLLIN, [this](uint32_t) { on_channel_readable(); });
            control_ = std::make_unique<vmm::ControlSocket>(
                options_.control, *loop_, [this](const nlohmann::json& request) { return handle_control(request); });
            loop_->start();
        } catch (const VmmError&) {
            ::kill(instance, SIGKILL);
            ::waitpid(instance, nullptr, 0);
            throw;
        }
    }

    const int timeout_ms = options_.timeout ? static_cast<int>(options_.timeout->count()) : -1;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    pollfd fds[3] = {{exited.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}, {loop_ ? -1 : channel_.get(), POLLIN, 0}};
    int ready;
    for (;;) {
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            wait_ms = static_cast<int>(std::max<decltype(left)>(left, 0));
        }
        ready = ::poll(fds, 3, wait_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready > 0 && fds[0].revents == 0 && fds[1].revents == 0) {  // the kernel said something
            if (!read_kernel_message()) fds[2].fd = -1;                 // the instance's end: pidfd next
            continue;
        }
        break;
    }

    int outcome = -1;
    std::string reason;
    if (ready == 0) {
        outcome = abi::kExitTimeout;
        reason = "watchdog: timed out after " + std::to_string(timeout_ms / 1000.0).substr(0, 5) + " s";
    } else if (fds[1].revents & POLLIN) {
        signalfd_siginfo info{};
        (void)!::read(signals.get(), &info, sizeof(info));
        outcome = 128 + static_cast<int>(info.ssi_signo);
        reason = info.ssi_signo == SIGTERM ? "terminated (SIGTERM)" : "interrupted (SIGINT)";
    }
    if (outcome >= 0) ::kill(instance, SIGKILL);
    int status = 0;
    while (::waitpid(instance, &status, 0) < 0 && errno == EINTR) {
    }
    if (outcome < 0 && stop_requested_) {
        outcome = 0;
        reason = "stopped through the control socket";
    } else if (outcome < 0) {
        if (WIFEXITED(status)) {
            outcome = WEXITSTATUS(status);
        } else {
            outcome = abi::kExitGuestCrash;
            reason = "the instance was killed by " + signal_name(WTERMSIG(status));
            if (WTERMSIG(status) == SIGSYS) reason += ": a host system call outside kiln-proc's seccomp allowlist";
        }
    }
    if (control_) control_->broadcast({{"event", "exited"}, {"status", outcome}});
    if (!reason.empty()) std::cerr << "kiln-proc: " << reason << "\n";
    if (loop_) loop_->stop();  // its thread writes the milestones
    if (options_.stats) print_stats();
    return outcome;
}

// kiln-vmm's --stats line, with kiln-proc's own steps: where a start's time goes.
void Tender::print_stats() const {
    const auto ms = [](Clock::time_point from, Clock::time_point to) {
        return to == Clock::time_point{}
                   ? std::string("-")
                   : std::to_string(std::chrono::duration<double, std::milli>(to - from).count()).substr(0, 5);
    };
    const Milestones& m = milestones_;
    std::cerr << "kiln-proc: stats: " << (start_info_ == 0 ? "restore" : "boot") << ", load " << ms(m.started, m.loaded)
              << " ms, seccomp filter " << ms(m.loaded, m.confined) << " ms, fork to ready or resumed "
              << ms(m.forked, m.running) << " ms, snapshots " << snapshots_.load() << "\n";
}

// On the loop thread. Everything the kernel says unasked: ready, and resumed (a restored
// instance's first word).
void Tender::on_channel_readable() {
    if (!read_kernel_message()) loop_->remove(channel_.get());  // the instance ended; the main thread reports it
}

bool Tender::read_kernel_message() {
    abi::ProcControlMessage message{};
    const ssize_t n = ::recv(channel_.get(), &message, sizeof(message), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return false;
    if (n == sizeof(message)) on_kernel_message(message);
    return true;
}

void Tender::on_kernel_message(const abi::ProcControlMessage& message) {
    if (milestones_.running == Clock::time_point{} &&
        (message.kind == abi::ProcControl::kReady || message.kind == abi::ProcControl::kResumed))
        milestones_.running = Clock::now();
    switch (message.kind) {
        case abi::ProcControl::kReady: guest_ready(message.arg0, static_cast<uint32_t>(message.arg1)); return;
        case abi::ProcControl::kResumed:
            resumed_once_ = true;
            parked_ = false;  // also when a byte in --resume-fifo, not a request, resumed it
            // A restored instance listened before its snapshot: ready again as soon as it runs.
            for (const auto& [protocol, port] : restored_listeners_) guest_ready(protocol, port);
            restored_listeners_.clear();
            return;
        default: return;
    }
}

bool Tender::exchange(abi::ProcControl request, abi::ProcControl reply, std::string& error) {
    const abi::ProcControlMessage message{request, 0, 0};
    if (::send(channel_.get(), &message, sizeof(message), MSG_NOSIGNAL) != sizeof(message)) {
        error = "the instance is gone";
        return false;
    }
    pollfd channel{channel_.get(), POLLIN, 0};
    for (;;) {
        const int ready = ::poll(&channel, 1, kKernelAnswerMs);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            error = "the kernel did not answer within " + std::to_string(kKernelAnswerMs / 1000) + " s";
            return false;
        }
        abi::ProcControlMessage answer{};
        const ssize_t n = ::recv(channel_.get(), &answer, sizeof(answer), MSG_DONTWAIT);
        if (n == 0) {
            error = "the instance ended";
            return false;
        }
        if (n != sizeof(answer)) continue;
        on_kernel_message(answer);  // the awaited answer too: a first kResumed makes the instance ready
        if (answer.kind == reply) return true;
    }
}

void Tender::guest_ready(uint32_t protocol, uint32_t port) {
    const char* name = protocol == 17 ? "udp" : "tcp";
    std::cerr << "kiln-proc: guest ready on " + std::string(name) + "/" + std::to_string(port) + "\n" << std::flush;
    listeners_.emplace_back(protocol, port);
    if (control_) control_->broadcast({{"event", "ready"}, {"proto", name}, {"port", port}}, true);
}

// On the loop thread: one request of the control socket (../shared/INTERFACES.md).
nlohmann::json Tender::handle_control(const nlohmann::json& request) {
    const std::string op = request.value("op", "");
    std::string error;
    if (op == "pause") {
        if (!parked_ && !exchange(abi::ProcControl::kPark, abi::ProcControl::kParked, error))
            return {{"ok", false}, {"error", "pause: " + error}};
        parked_ = true;
        return {{"ok", true}, {"state", "paused"}};
    }
    if (op == "resume") {
        if (parked_ && !exchange(abi::ProcControl::kResume, abi::ProcControl::kResumed, error))
            return {{"ok", false}, {"error", "resume: " + error}};
        parked_ = false;
        return {{"ok", true}, {"state", "running"}};
    }
    if (op == "stats") return {{"ok", true}, {"stats", stats_json()}};
    if (op == "snapshot") {
        if (!request.contains("dir") || !request["dir"].is_string())
            return {{"ok", false}, {"error", "snapshot: \"dir\" (a string) is required"}};
        if (options_.paused && !resumed_once_)
            return {{"ok", false},
                    {"error",
                     "snapshot: this instance was restored --paused and has not run since; its snapshot is "
                     "the one it was restored from"}};
        const bool was_running = !parked_;
        if (was_running && !exchange(abi::ProcControl::kPark, abi::ProcControl::kParked, error))
            return {{"ok", false}, {"error", "snapshot: " + error}};
        parked_ = true;
        nlohmann::json reply;
        try {
            const uint64_t took = snapshot(request["dir"].get<std::string>());
            reply = {{"ok", true}, {"dir", request["dir"]}, {"took_us", took}};
        } catch (const VmmError& e) {
            reply = {{"ok", false}, {"error", e.what()}};
        }
        if (was_running && request.value("resume", true)) {
            if (!exchange(abi::ProcControl::kResume, abi::ProcControl::kResumed, error))
                return {{"ok", false}, {"error", "snapshot: resuming: " + error}};
            parked_ = false;
        }
        return reply;
    }
    if (op == "stop") {
        stop_requested_ = true;
        ::kill(instance_, SIGKILL);
        return {{"ok", true}, {"state", "stopped"}};
    }
    return {{"ok", false}, {"error", "unknown op '" + op + "' (pause, resume, snapshot, stats, stop)"}};
}

// The instance's own figures, from the host: what it holds in memory and the CPU it used.
nlohmann::json Tender::stats_json() const {
    nlohmann::json s;
    s["state"] = stop_requested_ ? "stopped" : (parked_ ? "paused" : "running");
    long resident = 0;
    if (FILE* f = std::fopen(("/proc/" + std::to_string(instance_) + "/statm").c_str(), "r")) {
        long pages = 0;
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    s["rss_bytes"] = resident * 4096;
    // The time on a CPU, in nanoseconds: the first field of schedstat.
    unsigned long long cpu_ns = 0;
    if (FILE* f = std::fopen(("/proc/" + std::to_string(instance_) + "/schedstat").c_str(), "r")) {
        if (std::fscanf(f, "%llu", &cpu_ns) != 1) cpu_ns = 0;
        std::fclose(f);
    }
    s["cpu_time_us"] = cpu_ns / 1000;
    s["memory_bytes"] = options_.memory_bytes;
    s["snapshots"] = snapshots_.load();
    // The start's moments on CLOCK_MONOTONIC (steady_clock's), comparable with kilnd's own: its
    // wake traces (platform/services/wake_trace.h) take the steps between them from here.
    const auto ns = [](Clock::time_point t) {
        return t == Clock::time_point{}
                   ? int64_t{0}
                   : std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    };
    const Milestones& m = milestones_;
    s["start"] = {{"restored", start_info_ == 0},  {"started_ns", ns(m.started)}, {"loaded_ns", ns(m.loaded)},
                  {"confined_ns", ns(m.confined)}, {"forked_ns", ns(m.forked)},   {"running_ns", ns(m.running)}};
    return s;
}

}  // namespace kiln::proc
