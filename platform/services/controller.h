// kilnd's services at run time: it opens each service's public ports on the load balancer, tells
// the balancer which instances are ready, and carries out what the balancer asks for: wake a
// service (restore a standby instance from its snapshot, or boot one) and put an idle instance
// to standby. Those take time (a boot, a snapshot), so they run on the controller's own worker,
// which takes kilnd's state lock only while it touches the store or a process, never while it
// waits for a guest.
//
// Readiness is kiln-vmm's `ready` event on its control socket (the app's first listen()), never
// polling. The first time an instance of a scale-to-zero service becomes ready it is
// snapshotted at once, so every later wake skips boot and start-up.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "balancer/balancer.h"
#include "instances/instance_store.h"
#include "instances/supervisor.h"
#include "network/private_network.h"
#include "services/service_store.h"
#include "services/wake_trace.h"

namespace kiln::services {

struct ControllerParts {
    std::mutex& state_mutex;  // kilnd's one lock over the store and the processes
    instances::InstanceStore& instances;
    ServiceStore& services;
    instances::Supervisor& supervisor;
    network::PrivateNetwork& network;
};

class Controller {
  public:
    explicit Controller(ControllerParts parts);
    ~Controller();

    // Binds the service's public ports and serves them. Throws std::runtime_error naming a port
    // that cannot be bound. Called under the state lock.
    void open(const Service& service);
    void close(const std::string& service);
    // From the supervisor's hooks (under the state lock).
    void instance_started(const instances::Instance& instance);
    void instance_ended(const instances::Instance& instance);
    balancer::ServiceStats stats(const std::string& service) { return balancer_->stats(service); }
    // The service's last wake, step by step, and every wake's steps as histograms.
    std::optional<nlohmann::json> last_wake(const std::string& service) const { return wakes_.last(service); }
    std::map<std::string, StepHistogram> wake_steps(const std::string& service) const {
        return wakes_.histograms(service);
    }

  private:
    void wake(const std::string& service);
    // On the balancer's thread: resumes `service`'s restore prepared at standby if the state lock
    // is free at once and the prepared tender is listening; false leaves the wake to the worker.
    bool wake_prepared_now(const std::string& service);
    // The prepared restore of `service` that a wake would resume now (under the state lock).
    std::optional<instances::Instance> prepared_for(const std::string& service);
    // Starts (or resumes) `chosen` for `service`, or tells the balancer it cannot (under the lock).
    void wake_instance(const std::string& service, std::optional<instances::Instance> chosen);
    void sleep(const std::string& service, const std::string& instance);
    void watch(const std::string& instance);
    // `instance` into the balancer's rotation for `service`.
    void route(const std::string& service, const instances::Instance& instance);
    // Autoscale: a new instance of `service` made like its first one; nullopt at its maximum.
    std::optional<instances::Instance> clone_for(const Service& service);
    void post(std::function<void()> job);
    void work();
    bool stopping();

    // Watches wait for a guest (seconds under emulation): each on its own thread, so one slow
    // boot holds up neither the jobs nor the other watches.
    void start_watch(const std::string& instance);
    void reap_watches(bool all);

    ControllerParts parts_;
    WakeLog wakes_;  // before the balancer, whose thread writes to it
    std::unique_ptr<balancer::Balancer> balancer_;
    std::mutex mutex_;  // guards jobs_ and done_
    std::condition_variable changed_;
    std::deque<std::function<void()>> jobs_;
    bool done_ = false;
    std::thread worker_;
    // Instances started and not yet in the rotation (under the state lock): a wake that finds one
    // waits for it rather than starting another.
    std::set<std::string> coming_;
    // Of those, the ones a wake put in the rotation itself (a prepared restore ready as it resumed,
    // under the state lock): their watch does the rest and leaves the routing alone.
    std::set<std::string> routed_at_wake_;
    std::mutex watches_mutex_;
    std::vector<std::pair<std::thread, std::shared_ptr<std::atomic<bool>>>> watches_;  // thread, finished
};

}  // namespace kiln::services
