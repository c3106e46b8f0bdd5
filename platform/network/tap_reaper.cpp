#include "network/tap_reaper.h"

#include <cstdio>

namespace kiln::network {

TapReaper::TapReaper(netns::Namespace& ns)
    : netlink_(ns.run([&ns] { return std::make_unique<netns::Rtnetlink>(ns.name() + " (tap reaper)"); })),
      where_(ns.name()), thread_([this] { run(); }) {}

TapReaper::~TapReaper() {
    {
        std::lock_guard guard(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void TapReaper::reap(std::string tap) {
    {
        std::lock_guard guard(mutex_);
        queue_.push_back(std::move(tap));
    }
    changed_.notify_all();
}

void TapReaper::wait_idle() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

void TapReaper::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and nothing left
        std::deque<std::string> batch;
        batch.swap(queue_);
        busy_ = true;
        lock.unlock();
        delete_together(batch);
        lock.lock();
        busy_ = false;
        changed_.notify_all();
    }
}

// Each tap joins the doomed group, then the group goes in one request: as fast as the
// instances come and go, where one deletion at a time fell behind a busy kilnd, and the taps
// waiting their turn filled their bridge's 1,024 ports.
void TapReaper::delete_together(const std::deque<std::string>& taps) {
    for (const std::string& tap : taps) {
        try {
            if (netlink_->find(tap)) netlink_->set_group(tap, kDoomedGroup);
        } catch (const std::exception& error) {  // left for the namespace's end; said, not fatal
            std::fprintf(stderr, "kilnd: %s: cannot delete tap %s: %s\n", where_.c_str(), tap.c_str(), error.what());
        }
    }
    try {
        netlink_->delete_group(kDoomedGroup);
    } catch (const std::exception& error) {
        std::fprintf(stderr, "kilnd: %s: cannot delete %zu taps: %s\n", where_.c_str(), taps.size(), error.what());
    }
}

}  // namespace kiln::network
