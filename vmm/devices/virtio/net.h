// virtio-net backed by a tap device. Transmit: the guest's frames (virtio_net_hdr included) go to
// the tap with one writev each. Receive: frames read from the tap are spread over the guest's
// receive buffers (mergeable buffers), and one interrupt covers a batch (event index).
//
// With faults configured (--net ...,loss=,reorder=,delay=,seed=), frames in both directions pass
// through a FaultyLink (net/fault_model.h) instead: copied out, held for their delay, released by
// a timerfd on the event loop. Without faults none of that exists and frames are not copied.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "devices/virtio/device.h"
#include "event_loop.h"
#include "host/unique_fd.h"
#include "net/fault_model.h"
#include "net/tap.h"

namespace kiln::vmm::virtio {

struct NetCounters {
    std::atomic<uint64_t> rx_packets{0}, rx_bytes{0}, rx_dropped{0};
    std::atomic<uint64_t> tx_packets{0}, tx_bytes{0}, tx_dropped{0};
    // Frames the fault injection lost on purpose (not counted as dropped).
    std::atomic<uint64_t> rx_lost{0}, tx_lost{0};
};

class Net final : public Device {
  public:
    using Mac = std::array<uint8_t, 6>;
    Net(Tap tap, Mac mac, EventLoop& loop, const FaultSettings& faults = {});
    ~Net() override;

    uint32_t type() const override { return abi::virtio::kNet; }
    uint64_t features() const override;
    size_t queue_count() const override { return 2; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void activate(std::span<Queue> queues, uint64_t driver_features, Interrupt& interrupt) override;
    void reset() override;
    void process_queues() override;

    const NetCounters& counters() const { return counters_; }
    // The receive queue's positions (queue.h), and whether a frame waits for receive buffers.
    std::optional<Queue::Positions> receive_positions(bool& frame_waiting) const;
    const Tap& tap() const { return tap_; }
    const Mac& mac() const { return mac_; }

    // Sends a gratuitous ARP for `ipv4` (network byte order) from the guest's MAC into the tap,
    // on the guest's behalf, as QEMU's announce-self does after a migration: a restored guest's
    // neighbours (the host, the bridge) learn at once where it is, even those whose entry for it
    // failed while it was on disk, so no client's first connect depends on a retry.
    void announce(uint32_t ipv4);

  private:
    void transmit();
    void receive();
    // Reads the next frame from the tap into `pending_`; false if there is none.
    bool read_frame();
    bool deliver_pending() { return deliver({pending_.data(), pending_size_}); }
    // Copies a frame (virtio_net_hdr included) into the guest's receive chains.
    bool deliver(std::span<const uint8_t> frame);

    // The fault path.
    struct Faults;
    void transmit_faulty(const Chain& chain, size_t bytes);
    void receive_faulty();
    void send_due_frames();
    void arm_timer();
    void on_timer();

    Tap tap_;
    Mac mac_;
    EventLoop& loop_;
    mutable std::mutex mutex_;
    Queue* rx_ = nullptr;
    Queue* tx_ = nullptr;
    Interrupt* interrupt_ = nullptr;
    bool mergeable_ = false;
    std::vector<uint8_t> pending_;  // a frame read from the tap, not yet in the guest
    size_t pending_size_ = 0;
    NetCounters counters_;
    std::unique_ptr<Faults> faults_;  // null without faults: the fast path
};

}  // namespace kiln::vmm::virtio
