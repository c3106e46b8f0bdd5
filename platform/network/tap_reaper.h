// Deletes the taps of deleted instances off the request's path. The kernel unregisters a network
// device only after an RCU grace period (synchronize_net): ~20 ms here, most of what a DELETE of
// an instance (so `kiln run --rm`) took. Nothing waits for the tap to go: its name came from the
// instance's uuid and is never asked for again, and a new instance given the same address (so the
// same MAC) announces itself when it boots, which moves the bridge's entry for that MAC to its
// own port.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "netns/namespace.h"

namespace kiln::network {

class TapReaper {
  public:
    // Its own netlink socket in `ns`: a Namespace's is not to be shared between threads.
    explicit TapReaper(netns::Namespace& ns);
    // Deletes every tap still queued, then ends.
    ~TapReaper();
    TapReaper(const TapReaper&) = delete;
    TapReaper& operator=(const TapReaper&) = delete;

    void reap(std::string tap);
    // Returns once every tap queued so far is gone (or failed to go).
    void wait_idle();

    // The group (IFLA_GROUP) of taps on their way out; no other link is ever in it.
    static constexpr uint32_t kDoomedGroup = 0x6b696c6e;  // "kiln"

  private:
    void run();
    void delete_together(const std::deque<std::string>& taps);

    std::unique_ptr<netns::Rtnetlink> netlink_;
    std::string where_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::string> queue_;
    bool busy_ = false, stopping_ = false;
    std::thread thread_;
};

}  // namespace kiln::network
