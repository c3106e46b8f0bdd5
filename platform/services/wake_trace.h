// Where a wake's time goes: from the first connection held for a service with no instance to
// that connection connected to the woken one, step by step, so a user (and the benchmarks) can
// see which step to blame. Each step is the time between two moments:
//
//   queue      held by the balancer -> kilnd's service worker picks the wake up
//   spawn      -> kilnd launches the tender (store updated, tap attached)
//   launch     -> the tender's own code runs: a waiting tender got its orders    [tender]
//                 (instances/tender_pool.h), or a new one was exec'd and started
//   load       -> the snapshot (or kernel) loaded                                   [tender]
//   confine    -> the instance's seccomp filter and hand-off written                [tender]
//   fork       -> the instance forked (the tap's carrier awaited)                   [tender]
//   resume     -> the kernel runs again (mapped, confined, host set up)             [tender]
//   notify     -> kilnd has read the `ready` event
//   route      -> the instance is in the balancer's rotation
//   connect    -> the held connection is connected to it
//
// The [tender] steps come from kiln-proc's `stats` (its moments on CLOCK_MONOTONIC, the clock
// behind std::chrono::steady_clock here); a tender that has none (kiln-vmm) gives one step,
// `start`, from spawn to the `ready` read. A restore prepared at standby (kiln-proc --paused,
// instances/supervisor.h) was launched, loaded, confined and forked before the request came, and
// is routed as kilnd asks it to resume: its trace is `prepared`, with the steps queue, spawn (to
// the resume asked), resume (to the kernel running again) and connect.
// Every trace also goes into one histogram per step.
#pragma once

#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "balancer/balancer.h"

namespace kiln::services {

using WakeClock = std::chrono::steady_clock;

// Bounds fine enough for sub-millisecond steps.
inline constexpr double kStepBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                         0.025,  0.05,    0.1,    0.25,  1,      10};
using StepHistogram = balancer::SecondsHistogram<kStepBounds>;

struct WakeTrace {
    std::string instance, platform;
    bool restored = false;
    bool prepared = false;  // the tender's steps before `resume` happened before the request
    WakeClock::time_point held, decided, spawned, ready, routed, connected;
    // The tender's moments, when it reports them: started, loaded, confined, forked, running.
    std::vector<WakeClock::time_point> tender;
    bool tender_reported = false;  // with its moments, or with none (kiln-vmm's)

    // The steps in order, each with its seconds; only those whose two ends are known.
    std::vector<std::pair<std::string, double>> steps() const;
    nlohmann::json to_json() const;
};

// One per kilnd, shared by the balancer's thread, the services worker and the watches.
class WakeLog {
  public:
    // The balancer held a connection for `service` and asked for a wake.
    void held(const std::string& service, WakeClock::time_point at);
    void decided(const std::string& service, const std::string& instance, const std::string& platform, bool restored);
    void spawned(const std::string& service, WakeClock::time_point forked);
    void ready(const std::string& service, const std::string& instance);
    void routed(const std::string& service, const std::string& instance);
    // The held connection reached `instance`: the trace is complete.
    void connected(const std::string& service, const std::string& instance, WakeClock::time_point at);
    // The tender's own moments (its `stats` reply's "start"; null from a tender without them),
    // asked for once the instance is routed, so they may come after the connection. A trace goes
    // into the histograms once it has both.
    void tender_moments(const std::string& service, const std::string& instance, const nlohmann::json& start);

    std::optional<nlohmann::json> last(const std::string& service) const;
    std::map<std::string, StepHistogram> histograms(const std::string& service) const;
    void forget(const std::string& service);

  private:
    struct PerService {
        std::optional<WakeTrace> pending, last;
        std::map<std::string, StepHistogram> steps;
        bool last_observed = false;  // its steps are in the histograms
    };
    WakeTrace* pending_for(const std::string& service, const std::string& instance);
    void observe_when_complete(PerService& s);

    mutable std::mutex mutex_;
    std::map<std::string, PerService> services_;
};

}  // namespace kiln::services
