// kilnd's load balancer: one thread, one epoll, non-blocking sockets. Each service's public
// ports are listening sockets in the host's network namespace (kilnd binds them); the balancer's
// thread lives in the private network's namespace, so the upstream sockets it opens reach the
// instances' private addresses directly.
//
// Per connection (TCP mode): accept, pick the backend with the fewest connections that is below
// the service's hard limit, connect, then relay with splice(2). A connection that finds no
// backend is held (not refused) and the service is woken: kilnd restores or boots an instance
// and reports it with backend_up, and the held connections go to it. A backend whose instance
// has scale-to-zero is watched: with no connection for its cooldown it leaves the rotation at
// once (so no new connection can race its scale-down) and kilnd is told to put it to standby.
//
// Every public method may be called from any thread: it posts the change to the balancer's
// thread, which applies it in order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/unique_fd.h"
#include "netns/namespace.h"

namespace kiln::balancer {

struct Listener {
    UniqueFd fd;  // listening, non-blocking
    int destination_port = 0;
    bool http = false;  // balance each HTTP/1.1 request (else each TCP connection)
};

// How a service's backends are used and scaled.
struct Limits {
    int64_t soft = 0, hard = 0;  // connections per backend; 0 = none
    // Autoscale (when max_backends > 0): ask for one more backend when the service's open
    // connections reach `soft` per backend; report a backend idle after `scale_in_after` without
    // connections while more than min_backends are in the rotation.
    size_t min_backends = 0, max_backends = 0;
    std::chrono::milliseconds scale_in_after{0};
};

struct Hooks {
    // A service needs one more backend: connections wait and none can take them (`held` is when
    // the first of them was accepted), or (autoscale) its backends are at their soft limit
    // (`held` is the clock's epoch).
    std::function<void(const std::string& service, std::chrono::steady_clock::time_point held)> wake;
    // A connection that had waited is connected to `instance`'s app, at `at`.
    std::function<void(const std::string& service, const std::string& instance,
                       std::chrono::steady_clock::time_point at)>
        woke;
    // A backend with a cooldown had no connection for that long; it is out of the rotation.
    std::function<void(const std::string& service, const std::string& instance)> idle;
};

// A Prometheus-style histogram of seconds: counts per upper bound, cumulative when exported.
template <const auto& Bounds>
struct SecondsHistogram {
    static constexpr const auto& kBounds = Bounds;
    int64_t buckets[std::size(Bounds)] = {};  // observations <= kBounds[i] and > kBounds[i-1]
    int64_t count = 0;
    double sum = 0;
    void observe(double seconds) {
        ++count;
        sum += seconds;
        for (size_t i = 0; i < std::size(Bounds); ++i)
            if (seconds <= Bounds[i]) {
                ++buckets[i];
                return;
            }
    }
};

inline constexpr double kWaitBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
using Histogram = SecondsHistogram<kWaitBounds>;

// Counters, for metrics.
struct BackendStats {
    int64_t connections = 0;   // open now
    int64_t total = 0;         // ever given to it
    Histogram wake_latencies;  // its connections that had waited for a backend
};
struct ServiceStats {
    int64_t queued = 0;        // held now, waiting for a backend
    int64_t accepted = 0;      // ever
    int64_t failed = 0;        // closed without reaching a backend
    Histogram wake_latencies;  // connections that waited: accept to upstream connected
    std::map<std::string, BackendStats> backends;
};

class Balancer {
  public:
    // `connect_timeout`: how long an upstream connect may take before the next attempt (0: the
    // default, 5 s).
    Balancer(const netns::Namespace& ns, Hooks hooks, std::chrono::milliseconds connect_timeout = {});
    ~Balancer();
    Balancer(const Balancer&) = delete;
    Balancer& operator=(const Balancer&) = delete;

    void add_service(const std::string& service, std::vector<Listener> listeners, Limits limits);
    // Closes its listeners and every connection of it.
    void remove_service(const std::string& service);
    // The instance's app listens: connections may go to `ip` (host byte order). With a
    // `cooldown`, it is reported idle after that long without a connection.
    void backend_up(const std::string& service, const std::string& instance, uint32_t ip,
                    std::chrono::milliseconds cooldown);
    // The instance ended: out of the rotation, and the connections relayed to it are closed (a
    // dead instance sends no FIN or RST, so its clients would otherwise wait for their own
    // timeouts).
    void backend_down(const std::string& service, const std::string& instance);
    // The wake kilnd tried failed: connections held for `service` are closed.
    void wake_failed(const std::string& service);
    ServiceStats stats(const std::string& service);
    // How often its thread has woken: about once a tick (10 ms) when nothing happens.
    uint64_t wakeups() const;

    struct Impl;

  private:
    void post(std::function<void(Impl&)> change);
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

}  // namespace kiln::balancer
