// kiln-vmm's virtio-net with fault injection, end to end without a VM: a fake driver on guest
// memory (the two virtqueues) sends ARP requests through the Net device and a real tap into a
// namespace whose bridge answers them. Losses, delays and reordering must show up in both
// directions, exactly as the seeded model predicts.
#include <sys/eventfd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "devices/virtio/net.h"
#include "kvm/guest_memory.h"
#include "netns/names.h"
#include "netns/namespace.h"

namespace kiln::vmm::virtio {
namespace {

using namespace std::chrono_literals;
namespace abi = kiln::abi::virtio;
using netns::Ipv4Prefix;
using netns::Namespace;

constexpr size_t kHeader = sizeof(abi::NetHeader);
constexpr uint8_t kGuestMac[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x05};

// The driver's side of the receive (0) and transmit (1) queues, without event index.
class FakeDriver {
  public:
    static constexpr uint16_t kSize = 256;
    static constexpr uint64_t kRx = 0x10000, kTx = 0x20000;  // desc, +0x1000 avail, +0x2000 used
    static constexpr uint64_t kRxData = 0x100000, kTxData = 0x300000;
    static constexpr uint32_t kRxBuffer = 2048, kTxBuffer = 256;

    FakeDriver() : memory_(4 << 20) {
        for (size_t q = 0; q < 2; ++q) {
            const uint64_t base = q == 0 ? kRx : kTx;
            queues_[q].size = kSize;
            queues_[q].desc_gpa = base;
            queues_[q].avail_gpa = base + 0x1000;
            queues_[q].used_gpa = base + 0x2000;
            queues_[q].ready = true;
            EXPECT_TRUE(queues_[q].activate(memory_, false));
        }
        for (uint16_t i = 0; i < kSize; ++i) {
            memory_.write_object(kRx + 16ull * i,
                                 abi::Descriptor{kRxData + uint64_t{kRxBuffer} * i, kRxBuffer, abi::kDescWrite, 0});
            make_available(kRx, i);
        }
    }

    std::span<Queue> queues() { return queues_; }

    void send(const std::vector<uint8_t>& frame) {
        const uint16_t slot = static_cast<uint16_t>(sent_++ % kSize);
        ASSERT_LE(frame.size(), kTxBuffer);
        memory_.write(kTxData + uint64_t{kTxBuffer} * slot, frame);
        memory_.write_object(kTx + 16ull * slot, abi::Descriptor{kTxData + uint64_t{kTxBuffer} * slot,
                                                                 static_cast<uint32_t>(frame.size()), 0, 0});
        make_available(kTx, slot);
    }

    // Frames the device has put in the receive queue since the last call; their buffers go back.
    std::vector<std::vector<uint8_t>> receive() {
        std::vector<std::vector<uint8_t>> frames;
        const uint16_t used = index(kRx + 0x2000 + 2).load(std::memory_order_acquire);
        for (; rx_seen_ != used; ++rx_seen_) {
            abi::UsedElement e;
            const uint64_t element = kRx + 0x2000 + 4 + 8ull * (rx_seen_ % kSize);
            std::memcpy(&e, memory_.span(element, 8).data(), 8);
            const uint8_t* data = memory_.span(kRxData + uint64_t{kRxBuffer} * e.id, e.len).data();
            frames.emplace_back(data, data + e.len);
            make_available(kRx, static_cast<uint16_t>(e.id));
        }
        return frames;
    }

  private:
    std::atomic_ref<uint16_t> index(uint64_t gpa) {
        return std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(memory_.span(gpa, 2).data()));
    }
    void make_available(uint64_t queue, uint16_t head) {
        auto idx = index(queue + 0x1000 + 2);
        const uint16_t i = idx.load(std::memory_order_relaxed);
        memory_.write_object(queue + 0x1000 + 4 + 2ull * (i % kSize), head);
        idx.store(static_cast<uint16_t>(i + 1), std::memory_order_release);
    }

    GuestMemory memory_;
    Queue queues_[2];
    uint64_t sent_ = 0;
    uint16_t rx_seen_ = 0;
};

// "Who has 10.77.0.1? Tell 10.77.0.(10 + n)", with kiln-vmm's all-zero virtio_net_hdr in front.
std::vector<uint8_t> arp_request(uint8_t n) {
    std::vector<uint8_t> f(kHeader, 0);
    auto put = [&](std::initializer_list<uint8_t> bytes) { f.insert(f.end(), bytes); };
    put({0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    f.insert(f.end(), kGuestMac, kGuestMac + 6);
    put({0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01});
    f.insert(f.end(), kGuestMac, kGuestMac + 6);
    put({10, 77, 0, static_cast<uint8_t>(10 + n), 0, 0, 0, 0, 0, 0, 10, 77, 0, 1});
    f.resize(kHeader + 60, 0);
    return f;
}

// The n of the request an ARP reply answers, or -1 for any other frame.
int answered(const std::vector<uint8_t>& frame) {
    if (frame.size() < kHeader + 42) return -1;
    const uint8_t* eth = frame.data() + kHeader;
    if (eth[12] != 0x08 || eth[13] != 0x06 || eth[21] != 2) return -1;
    return eth[41] - 10;  // the last byte of the target IP address
}

struct Exchange {
    std::vector<int> answers;  // request numbers, in the order the replies reached the guest
    int other_frames = 0;
    uint64_t tx_lost = 0, rx_lost = 0;
    std::chrono::nanoseconds first_answer{0};
};

// Sends `requests` ARP requests in one batch through a Net device with `faults`, then collects
// replies until none has come for `quiet`.
Exchange exchange(const FaultSettings& faults, int requests, std::chrono::milliseconds quiet) {
    Namespace ns(netns::owned_name("kt", "vnet"));
    // No IPv6: its router solicitations would be frames the test did not ask for.
    ns.run([] {
        for (const char* conf : {"all", "default"})
            std::ofstream("/proc/sys/net/ipv6/conf/" + std::string(conf) + "/disable_ipv6") << "1";
    });
    ns.add_bridge("br0", Ipv4Prefix::parse("10.77.0.1/24"));
    ns.add_tap("tap0", "br0");

    EventLoop loop;
    Net net(ns.run([] { return Tap::open("tap0"); }), {0x52, 0x54, 0, 0, 0, 5}, loop, faults);
    struct StopFirst {  // the loop's thread must be gone before the device it calls is
        EventLoop& loop;
        ~StopFirst() { loop.stop(); }
    } stop_first{loop};
    loop.start();
    UniqueFd irqfd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    Interrupt interrupt(irqfd.get());
    FakeDriver driver;
    net.activate(driver.queues(), 0, interrupt);
    ns.wait_forwarding("tap0");  // the bridge drops what comes before

    for (int i = 0; i < requests; ++i) driver.send(arp_request(static_cast<uint8_t>(i)));
    const auto start = std::chrono::steady_clock::now();
    net.process_queues();  // the driver's kick

    Exchange result;
    auto last = start;
    for (;;) {
        const auto now = std::chrono::steady_clock::now();
        if (now - last > quiet || now - start > 20s) break;
        for (const auto& frame : driver.receive()) {
            const int n = answered(frame);
            if (n < 0) {
                ++result.other_frames;
                continue;
            }
            if (result.answers.empty()) result.first_answer = now - start;
            result.answers.push_back(n);
            last = now;
        }
        net.process_queues();  // buffers went back: kick
        std::this_thread::sleep_for(200us);
    }
    result.tx_lost = net.counters().tx_lost;
    result.rx_lost = net.counters().rx_lost;
    return result;
}

class VirtioNetFaults : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) FAIL() << "taps in a network namespace need root: run the tests as root";
    }
};

std::vector<int> sequence(int n) {
    std::vector<int> all(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
    return all;
}

TEST_F(VirtioNetFaults, WithoutFaultsEveryRequestIsAnsweredInOrder) {
    const Exchange e = exchange({}, 50, 300ms);
    EXPECT_EQ(e.answers, sequence(50));
    EXPECT_EQ(e.other_frames, 0);
}

TEST_F(VirtioNetFaults, DelayAppliesInBothDirections) {
    FaultSettings faults;
    faults.delay = 25ms;
    const Exchange e = exchange(faults, 1, 500ms);
    ASSERT_EQ(e.answers, sequence(1));
    EXPECT_GE(e.first_answer, 50ms);  // out and back
    EXPECT_LT(e.first_answer, 2s);
}

TEST_F(VirtioNetFaults, LossHitsBothDirectionsExactlyAsTheSeedSays) {
    FaultSettings faults;
    faults.loss_percent = 30;
    faults.seed = 11;
    constexpr int kRequests = 100;
    // What the model says: which requests leave the guest, then which of their replies arrive.
    FaultModel to_tap(faults, 0), to_guest(faults, 1);
    std::vector<int> expected;
    uint64_t tx_lost = 0, rx_lost = 0;
    for (int i = 0; i < kRequests; ++i) {
        if (to_tap.next() == FaultModel::Fate::kLose) {
            ++tx_lost;
            continue;
        }
        if (to_guest.next() == FaultModel::Fate::kLose)
            ++rx_lost;
        else
            expected.push_back(i);
    }
    ASSERT_GT(tx_lost, 0u);
    ASSERT_GT(rx_lost, 0u);

    const Exchange e = exchange(faults, kRequests, 300ms);
    EXPECT_EQ(e.answers, expected);
    EXPECT_EQ(e.tx_lost, tx_lost);
    EXPECT_EQ(e.rx_lost, rx_lost);
    EXPECT_EQ(e.other_frames, 0);
    EXPECT_EQ(exchange(faults, kRequests, 300ms).answers, expected);  // and again: replayable
}

TEST_F(VirtioNetFaults, ReorderingShufflesButLosesNothing) {
    FaultSettings faults;
    faults.reorder_percent = 30;
    faults.seed = 3;
    const Exchange e = exchange(faults, 60, 300ms);
    std::vector<int> sorted = e.answers;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, sequence(60));
    EXPECT_NE(e.answers, sequence(60));
    EXPECT_EQ(e.tx_lost + e.rx_lost, 0u);
}

}  // namespace
}  // namespace kiln::vmm::virtio
