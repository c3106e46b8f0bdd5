#include "services/wake_trace.h"

#include <algorithm>

namespace kiln::services {

namespace {

double seconds_between(WakeClock::time_point from, WakeClock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

bool known(WakeClock::time_point t) { return t != WakeClock::time_point{}; }

// The tender's moments are CLOCK_MONOTONIC nanoseconds, steady_clock's epoch on Linux.
WakeClock::time_point from_monotonic_ns(int64_t ns) {
    return WakeClock::time_point(std::chrono::duration_cast<WakeClock::duration>(std::chrono::nanoseconds(ns)));
}

constexpr const char* kTenderSteps[] = {"launch", "load", "confine", "fork", "resume"};
constexpr const char* kTenderMoments[] = {"started_ns", "loaded_ns", "confined_ns", "forked_ns", "running_ns"};

}  // namespace

std::vector<std::pair<std::string, double>> WakeTrace::steps() const {
    std::vector<std::pair<std::string, double>> out;
    const auto step = [&out](const char* name, WakeClock::time_point from, WakeClock::time_point to) {
        if (known(from) && known(to)) out.emplace_back(name, seconds_between(from, to));
    };
    step("queue", held, decided);
    step("spawn", decided, spawned);
    if (prepared && !tender.empty()) {
        // Routed before it ran: the connect's SYN waited in its tap. The tender tells of the
        // kernel running a moment after the kernel may have answered it.
        const WakeClock::time_point running = known(connected) ? std::min(tender.back(), connected) : tender.back();
        step("resume", spawned, running);
        step("connect", running, connected);
        return out;
    } else if (tender.size() == std::size(kTenderSteps)) {
        WakeClock::time_point before = spawned;
        for (size_t i = 0; i < tender.size(); ++i) {
            step(kTenderSteps[i], before, tender[i]);
            before = tender[i];
        }
        step("notify", before, ready);
    } else {
        step("start", spawned, ready);
    }
    step("route", ready, routed);
    step("connect", routed, connected);
    return out;
}

nlohmann::json WakeTrace::to_json() const {
    nlohmann::json steps_json = nlohmann::json::array();
    for (const auto& [name, seconds] : steps()) steps_json.push_back({{"step", name}, {"ms", seconds * 1000}});
    nlohmann::json j = {{"instance", instance},
                        {"platform", platform},
                        {"restored", restored},
                        {"prepared", prepared},
                        {"steps", steps_json}};
    if (known(held) && known(connected)) j["total_ms"] = seconds_between(held, connected) * 1000;
    return j;
}

void WakeLog::held(const std::string& service, WakeClock::time_point at) {
    std::lock_guard guard(mutex_);
    auto& s = services_[service];
    // A wake on its way whose connections were held again (the instance it resumed ended before
    // it connected; another is started): still that wake. One that never finished is forgotten.
    constexpr auto kWakeLifetime = std::chrono::seconds(60);
    if (s.pending && !s.pending->instance.empty() && at - s.pending->held < kWakeLifetime) return;
    s.pending = WakeTrace{};
    s.pending->held = at;
}

WakeTrace* WakeLog::pending_for(const std::string& service, const std::string& instance) {
    const auto it = services_.find(service);
    if (it == services_.end() || !it->second.pending || it->second.pending->instance != instance) return nullptr;
    return &*it->second.pending;
}

void WakeLog::decided(const std::string& service, const std::string& instance, const std::string& platform,
                      bool restored) {
    std::lock_guard guard(mutex_);
    const auto it = services_.find(service);
    // Only the wake a held connection asked for, and only its first decision.
    if (it == services_.end() || !it->second.pending || !it->second.pending->instance.empty()) return;
    WakeTrace& trace = *it->second.pending;
    trace.instance = instance;
    trace.platform = platform;
    trace.restored = restored;
    trace.decided = WakeClock::now();
}

void WakeLog::spawned(const std::string& service, WakeClock::time_point forked) {
    std::lock_guard guard(mutex_);
    const auto it = services_.find(service);
    if (it != services_.end() && it->second.pending && !known(it->second.pending->spawned))
        it->second.pending->spawned = forked;
}

void WakeLog::ready(const std::string& service, const std::string& instance) {
    std::lock_guard guard(mutex_);
    if (WakeTrace* trace = pending_for(service, instance); trace && !known(trace->ready))
        trace->ready = WakeClock::now();
}

void WakeLog::routed(const std::string& service, const std::string& instance) {
    std::lock_guard guard(mutex_);
    if (WakeTrace* trace = pending_for(service, instance); trace && !known(trace->routed))
        trace->routed = WakeClock::now();
}

void WakeLog::connected(const std::string& service, const std::string& instance, WakeClock::time_point at) {
    std::lock_guard guard(mutex_);
    WakeTrace* trace = pending_for(service, instance);
    if (!trace || !known(trace->routed)) return;
    trace->connected = at;
    auto& s = services_.at(service);
    s.last = std::move(s.pending);
    s.pending.reset();
    s.last_observed = false;
    observe_when_complete(s);
}

void WakeLog::tender_moments(const std::string& service, const std::string& instance, const nlohmann::json& start) {
    std::lock_guard guard(mutex_);
    const auto it = services_.find(service);
    if (it == services_.end()) return;
    auto& s = it->second;
    WakeTrace* trace = pending_for(service, instance);
    if (!trace && s.last && s.last->instance == instance) trace = &*s.last;
    if (!trace || trace->tender_reported) return;
    trace->tender_reported = true;
    if (start.is_object()) {
        std::vector<WakeClock::time_point> moments;
        for (const char* key : kTenderMoments) {
            const int64_t ns = start.value(key, int64_t{0});
            if (ns <= 0) break;
            moments.push_back(from_monotonic_ns(ns));
        }
        if (moments.size() == std::size(kTenderMoments)) {
            // Started before kilnd launched it for this wake: prepared at the instance's standby.
            trace->prepared = known(trace->spawned) && moments.front() < trace->spawned;
            trace->tender = std::move(moments);
        }
    }
    observe_when_complete(s);
}

// A trace goes into the histograms once it is complete: connected, and the tender heard from.
void WakeLog::observe_when_complete(PerService& s) {
    if (!s.last || s.last_observed || !s.last->tender_reported) return;
    s.last_observed = true;
    for (const auto& [name, seconds] : s.last->steps()) s.steps[name].observe(seconds);
    s.steps["total"].observe(seconds_between(s.last->held, s.last->connected));
}

std::optional<nlohmann::json> WakeLog::last(const std::string& service) const {
    std::lock_guard guard(mutex_);
    const auto it = services_.find(service);
    if (it == services_.end() || !it->second.last) return std::nullopt;
    return it->second.last->to_json();
}

std::map<std::string, StepHistogram> WakeLog::histograms(const std::string& service) const {
    std::lock_guard guard(mutex_);
    const auto it = services_.find(service);
    return it == services_.end() ? std::map<std::string, StepHistogram>{} : it->second.steps;
}

void WakeLog::forget(const std::string& service) {
    std::lock_guard guard(mutex_);
    services_.erase(service);
}

}  // namespace kiln::services
