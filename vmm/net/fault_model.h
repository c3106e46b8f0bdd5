// Network faults for testing TCP over a bad link: loss, reordering and delay, decided per frame by
// a seeded generator, so that a failing run can be replayed with its seed. Used by virtio-net
// (devices/virtio/net.h) in both directions, one FaultyLink each.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace kiln::vmm {

struct FaultSettings {
    double loss_percent = 0;            // each frame is lost with this probability
    double reorder_percent = 0;         // each frame is held back (overtaken) with this probability
    std::chrono::nanoseconds delay{0};  // every frame arrives this much later
    uint64_t seed = 0;

    bool active() const { return loss_percent > 0 || reorder_percent > 0 || delay.count() > 0; }
    std::string describe() const;  // "loss=1% reorder=0.5% delay=1ms seed=42"
};

// The fate of each frame in one direction. The sequence of fates depends only on the seed and
// the direction (`stream`), not on timing or on the other direction's traffic.
class FaultModel {
  public:
    enum class Fate { kPass, kLose, kHoldBack };

    FaultModel(const FaultSettings& settings, uint64_t stream);
    Fate next();

  private:
    uint64_t random();

    uint64_t state_;
    bool always_lose_, always_hold_;
    uint64_t lose_below_, hold_below_;
};

// One direction of a faulty link: frames go in with offer() and come out of pop_due() when the
// link says so. A frame passes after `delay`; a lost one never; a held-back one goes out right
// after the next frame that overtakes it, or kMaxHold after its normal time if none comes.
class FaultyLink {
  public:
    using Clock = std::chrono::steady_clock;
    using Frame = std::vector<uint8_t>;
    enum class Offer { kQueued, kLost, kOverflow };

    // Frames in flight are capped, like a router's queue: more is dropped (kOverflow). 8 MiB is
    // 64 ms at 1 Gbit/s, far beyond the delays tests use.
    static constexpr size_t kMaxQueuedBytes = 8u << 20;
    static constexpr std::chrono::nanoseconds kMaxHold = std::chrono::milliseconds(1);

    FaultyLink(const FaultSettings& settings, uint64_t stream);

    Offer offer(Frame frame, Clock::time_point now);
    // The next frame due at `now`, in the order the link delivers them; call until nullopt.
    std::optional<Frame> pop_due(Clock::time_point now);
    // When the next queued frame is due, if one is queued (after pop_due has returned nullopt).
    std::optional<Clock::time_point> next_due() const;
    size_t queued() const { return passing_.size() + held_.size(); }
    void clear();

  private:
    struct Entry {
        uint64_t sequence;  // arrival order
        Clock::time_point due;
        Frame frame;
    };
    Frame take(std::deque<Entry>& queue);

    FaultModel model_;
    std::chrono::nanoseconds delay_;
    std::deque<Entry> passing_;  // in arrival order, so also in order of `due`
    std::deque<Entry> held_;     // held back, in arrival order
    uint64_t next_sequence_ = 0;
    uint64_t released_up_to_ = 0;  // one past the sequence of the last passing frame delivered
    size_t queued_bytes_ = 0;
};

}  // namespace kiln::vmm
