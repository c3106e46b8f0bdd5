// Tenders started ahead of need (host/tender_orders.h): one per platform, waiting, already past
// its exec and start-up, so that a wake only sends it its orders. Taking one leaves the pool
// empty until refill(), which kilnd's reconciler calls every 50 ms and when next_refill() says:
// a new tender is not started during the wake that took the last one (on a small host it would
// compete with it for a CPU), but right after it, so that a start that follows finds one.
// With cgroups, each waiting tender starts in a group of its own (`waiting-N`), which becomes the
// instance's when it is taken (Cgroups::adopt): no process moves on a start's path.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "host/unique_fd.h"
#include "instances/cgroups.h"

namespace kiln::instances {

class TenderPool {
  public:
    struct Tender {
        pid_t pid = 0;
        UniqueFd orders;    // kilnd's end of its orders socket
        std::string group;  // its cgroup (Cgroups' name for it); empty: none
    };

    // `binaries`: platform -> tender binary; `netns`: the namespace tenders run in (-1: kilnd's);
    // `cgroups`: where waiting tenders get their groups (null: none; it outlives the pool).
    TenderPool(std::map<std::string, std::string> binaries, int netns, const Cgroups* cgroups);
    // Ends the waiting tenders and removes their groups.
    ~TenderPool();
    TenderPool(const TenderPool&) = delete;
    TenderPool& operator=(const TenderPool&) = delete;

    // A waiting tender of `platform`, or nullopt (none yet, or it died waiting).
    std::optional<Tender> take(const std::string& platform);
    // Starts a tender for each platform without one, once the last take is kRefillAfter old.
    void refill();
    // When refill() has a tender to start (kRefillAfter after the last take), or nullopt: none
    // missing.
    std::optional<std::chrono::steady_clock::time_point> next_refill() const;

    static constexpr auto kRefillAfter = std::chrono::milliseconds(20);

  private:
    bool start(const std::string& platform);
    void end(Tender& tender);  // a waiting tender killed, reaped, its group removed

    std::map<std::string, std::string> binaries_;
    int netns_;
    const Cgroups* cgroups_;
    uint64_t groups_made_ = 0;
    std::map<std::string, Tender> waiting_;
    std::chrono::steady_clock::time_point last_take_{};
};

}  // namespace kiln::instances
