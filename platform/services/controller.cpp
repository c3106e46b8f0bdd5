#include "services/controller.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "instances/vmm_control.h"

namespace kiln::services {

namespace fs = std::filesystem;
using instances::Instance;

namespace {

// Generous: under nested emulation a boot or a snapshot takes seconds, not milliseconds.
constexpr auto kReadyTimeout = std::chrono::seconds(60);
constexpr auto kSnapshotTimeout = std::chrono::seconds(60);

// A listening, non-blocking TCP socket on every host address at `port`.
UniqueFd listen_on(int port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) throw std::runtime_error("port " + std::to_string(port) + ": " + std::strerror(errno));
    const int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<uint16_t>(port));
    at.sin_addr.s_addr = htonl(INADDR_ANY);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 || ::listen(fd.get(), 4096) != 0)
        throw std::runtime_error("port " + std::to_string(port) + ": " + std::strerror(errno));
    return fd;
}

bool has_snapshot(const std::string& dir) { return fs::exists(fs::path(dir) / "state"); }

}  // namespace

Controller::Controller(ControllerParts parts) : parts_(parts) {
    balancer::Hooks hooks;
    hooks.wake = [this](const std::string& service, WakeClock::time_point held) {
        if (held != WakeClock::time_point{}) wakes_.held(service, held);
        if (!wake_prepared_now(service)) post([this, service] { wake(service); });
    };
    hooks.woke = [this](const std::string& service, const std::string& instance, WakeClock::time_point at) {
        wakes_.connected(service, instance, at);
    };
    hooks.idle = [this](const std::string& service, const std::string& instance) {
        post([this, service, instance] { sleep(service, instance); });
    };
    balancer_ = std::make_unique<balancer::Balancer>(parts_.network.ns(), std::move(hooks));
    worker_ = std::thread([this] { work(); });
}

Controller::~Controller() {
    {
        std::lock_guard guard(mutex_);
        done_ = true;
    }
    changed_.notify_all();
    worker_.join();
    reap_watches(true);
    balancer_.reset();
}

bool Controller::stopping() {
    std::lock_guard guard(mutex_);
    return done_;
}

void Controller::start_watch(const std::string& uuid) {
    reap_watches(false);
    auto finished = std::make_shared<std::atomic<bool>>(false);
    std::lock_guard guard(watches_mutex_);
    watches_.emplace_back(std::thread([this, uuid, finished] {
                              try {
                                  watch(uuid);
                              } catch (const std::exception& e) {
                                  std::fprintf(stderr, "kilnd: watching %s: %s\n", uuid.c_str(), e.what());
                              }
                              *finished = true;
                          }),
                          finished);
}

void Controller::reap_watches(bool all) {
    std::lock_guard guard(watches_mutex_);
    for (auto it = watches_.begin(); it != watches_.end();) {
        if (all || *it->second) {
            it->first.join();
            it = watches_.erase(it);
        } else {
            ++it;
        }
    }
}

void Controller::post(std::function<void()> job) {
    {
        std::lock_guard guard(mutex_);
        jobs_.push_back(std::move(job));
    }
    changed_.notify_one();
}

void Controller::work() {
    for (;;) {
        std::function<void()> job;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [this] { return done_ || !jobs_.empty(); });
            if (done_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        try {
            job();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kilnd: services: %s\n", e.what());
        }
    }
}

void Controller::open(const Service& service) {
    std::vector<balancer::Listener> listeners;
    for (const auto& port : service.ports) {
        const bool http = std::find(port.handlers.begin(), port.handlers.end(), "http") != port.handlers.end();
        listeners.push_back({listen_on(port.port), port.destination_port, http});
    }
    balancer::Limits limits;
    limits.soft = service.soft_limit;
    limits.hard = service.hard_limit;
    limits.min_backends = static_cast<size_t>(service.autoscale_min);
    limits.max_backends = static_cast<size_t>(service.autoscale_max);
    limits.scale_in_after = std::chrono::milliseconds(service.autoscale_cooldown_ms);
    balancer_->add_service(service.uuid, std::move(listeners), limits);
}

void Controller::close(const std::string& service) {
    balancer_->remove_service(service);
    wakes_.forget(service);
}

void Controller::instance_started(const Instance& instance) {
    if (instance.service.empty()) return;
    coming_.insert(instance.uuid);
    start_watch(instance.uuid);
}

void Controller::instance_ended(const Instance& instance) {
    coming_.erase(instance.uuid);
    if (!instance.service.empty()) balancer_->backend_down(instance.service, instance.uuid);
}

void Controller::watch(const std::string& uuid) {
    // However the watch ends, the instance is no longer on its way.
    struct Arrived {
        Controller& c;
        const std::string& uuid;
        ~Arrived() {
            std::lock_guard lock(c.parts_.state_mutex);
            c.coming_.erase(uuid);
            c.routed_at_wake_.erase(uuid);
        }
    } arrived{*this, uuid};
    std::string control, snapshot, service;
    instances::ScaleToZero scale_to_zero;
    bool writes_volumes = false;
    int64_t pid = 0, start = 0;
    {
        std::lock_guard lock(parts_.state_mutex);
        const auto instance = parts_.instances.find(uuid);
        if (!instance || instance->state != instances::kRunning) return;
        control = parts_.supervisor.control_socket(uuid);
        snapshot = parts_.supervisor.snapshot_dir(uuid);
        service = instance->service;
        scale_to_zero = instance->scale_to_zero;
        writes_volumes = parts_.supervisor.writes_volumes(*instance);
        pid = instance->pid;
        start = instance->pid_start;
    }
    // Until kiln-vmm is gone (a zombie until the supervisor reaps it) or kilnd stops.
    const auto keep_waiting = [this, pid, start] { return !stopping() && instances::process_running(pid, start); };
    if (!instances::wait_ready(control, kReadyTimeout, keep_waiting)) {
        std::fprintf(stderr, "kilnd: instance %s never became ready\n", uuid.c_str());
        return;  // it ended (the supervisor sees to it) or hangs: it never joins the rotation
    }
    wakes_.ready(service, uuid);
    // An instance that writes a volume gets its snapshot as it goes to sleep, never one from before
    // (its volume moves on from here).
    if (!writes_volumes && scale_to_zero.enabled() && !has_snapshot(snapshot)) {
        // Right after the app became ready, before any client: every later wake starts here.
        const auto answer = instances::control_request(control, {{"op", "snapshot"}, {"dir", snapshot}},
                                                       std::chrono::milliseconds(kSnapshotTimeout));
        if (!answer || !answer->value("ok", false))
            std::fprintf(stderr, "kilnd: instance %s: the first snapshot failed: %s\n", uuid.c_str(),
                         answer ? answer->dump().c_str() : "no answer");
    }
    {
        std::lock_guard lock(parts_.state_mutex);
        const auto instance = parts_.instances.find(uuid);
        if (!instance || instance->state != instances::kRunning || instance->pid != pid) return;  // gone meanwhile
        if (routed_at_wake_.count(uuid) == 0) route(service, *instance);
    }
    // Off the wake's path: where the tender's own time went, for the wake's trace.
    const auto stats = instances::control_request(control, {{"op", "stats"}}, std::chrono::seconds(5));
    wakes_.tender_moments(
        service, uuid,
        stats && stats->contains("stats") ? (*stats)["stats"].value("start", nlohmann::json()) : nlohmann::json());
}

void Controller::route(const std::string& service, const Instance& instance) {
    const auto cooldown = instance.scale_to_zero.enabled()
                              ? std::chrono::milliseconds(instance.scale_to_zero.cooldown_ms)
                              : std::chrono::milliseconds(0);
    wakes_.routed(service, instance.uuid);
    balancer_->backend_up(service, instance.uuid, network::parse_ipv4(instance.ip), cooldown);
}

// The wake of a service at zero whose restore was prepared at standby is short work for kilnd (a
// few store reads, the resume asked, the store updated), and handing it to the worker added a
// thread's wake-up to it: the wake trace's `queue` step went from 0.31-0.34 ms at p50 to
// 0.17-0.22 ms with this and the store's kept statements (store/sqlite.h). So the balancer's
// thread does it itself, but only if it need not wait: for the state lock (held by an API
// request, it would stall every service's traffic) or for the prepared tender's control socket
// (just after standby).
bool Controller::wake_prepared_now(const std::string& service) {
    std::unique_lock lock(parts_.state_mutex, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    std::optional<Instance> chosen;
    try {
        chosen = prepared_for(service);
        if (!chosen || !fs::exists(parts_.supervisor.control_socket(chosen->uuid))) return false;
    } catch (const std::exception&) {
        return false;  // the worker's wake tries again, and reports what fails
    }
    wake_instance(service, std::move(chosen));
    return true;
}

std::optional<Instance> Controller::prepared_for(const std::string& service) {
    const auto prepared = parts_.supervisor.prepared_wake_of_service(service);
    if (!prepared || !coming_.empty()) return std::nullopt;
    auto chosen = parts_.instances.find(*prepared);
    if (chosen && chosen->state != instances::kStandby) chosen.reset();
    return chosen;
}

void Controller::wake(const std::string& service) {
    std::lock_guard lock(parts_.state_mutex);
    // From zero, with a restore prepared: that instance, without reading all of the service's.
    std::optional<Instance> chosen = prepared_for(service);
    for (auto& instance : chosen ? std::vector<Instance>{} : parts_.instances.list_of_service(service)) {
        if (coming_.count(instance.uuid)) return;  // one is on its way: its watch brings it in
        if (instance.state == instances::kStandby && (!chosen || chosen->state != instances::kStandby))
            chosen = instance;
        if (instance.state == instances::kStopped && !chosen) chosen = instance;
    }
    wake_instance(service, std::move(chosen));
}

void Controller::wake_instance(const std::string& service, std::optional<Instance> chosen) {
    // Whatever goes wrong, the balancer hears of it: held connections must not wait for nothing.
    try {
        const auto group = parts_.services.find(service);
        if (!chosen && group && group->autoscale_max > 0) chosen = clone_for(*group);
        if (!chosen) {
            balancer_->wake_failed(service);
            return;
        }
        const std::string snapshot = parts_.supervisor.snapshot_dir(chosen->uuid);
        // One that writes a volume wakes from its snapshot only if it slept since: one that ran
        // since (and then crashed or was stopped) has moved its volume on from that memory.
        const bool restore = has_snapshot(snapshot) &&
                             (chosen->state == instances::kStandby || !parts_.supervisor.writes_volumes(*chosen));
        wakes_.decided(service, chosen->uuid, chosen->platform, restore);
        const auto started = parts_.supervisor.start(*chosen, restore ? snapshot : std::string());
        wakes_.spawned(service, started.at);
        if (started.ready) {  // a prepared restore asked to resume: the SYN waits in its tap
            wakes_.ready(service, chosen->uuid);
            route(service, *chosen);
            routed_at_wake_.insert(chosen->uuid);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kilnd: waking service %s: %s\n", service.c_str(), e.what());
        balancer_->wake_failed(service);
    }
}

std::optional<Instance> Controller::clone_for(const Service& service) {
    const auto members = parts_.instances.list_of_service(service.uuid);  // oldest first
    if (members.empty() || static_cast<int64_t>(members.size()) >= service.autoscale_max) return std::nullopt;
    Instance clone = members.front();
    clone.uuid = instances::new_uuid();
    for (int n = 2; parts_.instances.find(clone.name = service.name + "-" + std::to_string(n)); ++n) {
    }
    clone.state = instances::kStopped;
    clone.ip.clear();
    clone.pid = clone.pid_start = clone.started_ns = clone.stopped_ns = 0;
    clone.restarts = clone.starts = clone.stop_reason = 0;
    clone.exit_code.reset();
    clone.vmm_status.reset();
    clone.created_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    parts_.instances.insert(clone);
    return clone;
}

void Controller::sleep(const std::string& service, const std::string& uuid) {
    std::lock_guard lock(parts_.state_mutex);
    auto instance = parts_.instances.find(uuid);
    if (!instance || instance->state != instances::kRunning || instance->service != service) return;
    if (!instance->scale_to_zero.enabled()) {
        // Autoscale's scale-in: an instance without scale-to-zero simply stops; a scale-out
        // starts it again.
        parts_.supervisor.stop(*instance, std::chrono::milliseconds(2000), false);
        return;
    }
    const std::string snapshot = parts_.supervisor.snapshot_dir(uuid);
    if (instance->scale_to_zero.stateful || parts_.supervisor.writes_volumes(*instance) || !has_snapshot(snapshot)) {
        // Paused and saved as it is now: it wakes with this memory (always so with a volume it
        // writes: a snapshot from before would not match the volume).
        const auto answer =
            instances::control_request(parts_.supervisor.control_socket(uuid),
                                       {{"op", "snapshot"}, {"dir", snapshot}, {"resume", false}}, kSnapshotTimeout);
        if (!answer || !answer->value("ok", false)) {
            std::fprintf(stderr, "kilnd: instance %s: snapshot at scale-down failed; it will boot cold\n",
                         instance->name.c_str());
            std::error_code error;
            fs::remove_all(snapshot, error);  // an older one would wake it with the wrong memory
        }
    }
    parts_.supervisor.standby(*instance);
}

}  // namespace kiln::services
