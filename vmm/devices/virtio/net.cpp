#include "devices/virtio/net.h"

#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace kiln::vmm::virtio {

namespace abi = kiln::abi::virtio;

namespace {
constexpr size_t kHeader = sizeof(abi::NetHeader);
constexpr size_t kMaxFrame = 65536 + 14;  // a TSO super-frame and its Ethernet header
constexpr uint16_t kLinkUp = 1;
}  // namespace

// Stream numbers of the two directions' fault models.
enum : uint64_t { kToTap = 0, kToGuest = 1 };

struct Net::Faults {
    explicit Faults(const FaultSettings& settings) : to_tap(settings, kToTap), to_guest(settings, kToGuest) {}
    FaultyLink to_tap, to_guest;
    // The frame due to the guest that is waiting for receive buffers.
    std::optional<FaultyLink::Frame> ready;
    UniqueFd timer;  // timerfd, armed for the earliest due frame
};

Net::Net(Tap tap, Mac mac, EventLoop& loop, const FaultSettings& faults)
    : tap_(std::move(tap)), mac_(mac), loop_(loop), pending_(kHeader + kMaxFrame) {
    if (faults.active()) {
        faults_ = std::make_unique<Faults>(faults);
        faults_->timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!faults_->timer.valid()) throw system_error("--net tap=" + tap_.name() + ": timerfd");
        // The seed is what replays a failure: say it even when it was chosen at random.
        std::fprintf(stderr, "kiln-vmm: --net tap=%s: faults %s\n", tap_.name().c_str(), faults.describe().c_str());
        loop_.add(faults_->timer.get(), EPOLLIN, [this](uint32_t) { on_timer(); });
    }
    loop_.add(tap_.fd(), EPOLLIN | EPOLLET, [this](uint32_t) {
        std::lock_guard lock(mutex_);
        receive();
    });
}

Net::~Net() {
    loop_.remove(tap_.fd());
    if (faults_) loop_.remove(faults_->timer.get());
}

uint64_t Net::features() const {
    return abi::kFeatureRingEventIdx | abi::kNetFeatureCsum | abi::kNetFeatureGuestCsum | abi::kNetFeatureMac |
           abi::kNetFeatureHostTso4 | abi::kNetFeatureGuestTso4 | abi::kNetFeatureMrgRxbuf | abi::kNetFeatureStatus;
}

void Net::read_config(uint64_t offset, std::span<uint8_t> data) {
    // struct virtio_net_config: mac[6], status, max_virtqueue_pairs, mtu.
    uint8_t config[12] = {};
    std::memcpy(config, mac_.data(), 6);
    std::memcpy(config + 6, &kLinkUp, 2);
    const uint16_t pairs = 1, mtu = 1500;
    std::memcpy(config + 8, &pairs, 2);
    std::memcpy(config + 10, &mtu, 2);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void Net::activate(std::span<Queue> queues, uint64_t driver_features, Interrupt& interrupt) {
    std::lock_guard lock(mutex_);
    rx_ = &queues[0];
    tx_ = &queues[1];
    interrupt_ = &interrupt;
    mergeable_ = driver_features & abi::kNetFeatureMrgRxbuf;
    unsigned offload = 0;
    if (driver_features & abi::kNetFeatureGuestCsum) offload |= TUN_F_CSUM;
    if ((driver_features & abi::kNetFeatureGuestCsum) && (driver_features & abi::kNetFeatureGuestTso4))
        offload |= TUN_F_TSO4;
    tap_.set_offload(offload);
}

std::optional<Queue::Positions> Net::receive_positions(bool& frame_waiting) const {
    std::lock_guard lock(mutex_);
    frame_waiting = pending_size_ > 0 || (faults_ && faults_->ready);
    return rx_ ? rx_->positions() : std::nullopt;
}

void Net::reset() {
    std::lock_guard lock(mutex_);
    rx_ = tx_ = nullptr;
    interrupt_ = nullptr;
    pending_size_ = 0;
    if (faults_) {
        faults_->to_tap.clear();
        faults_->to_guest.clear();
        faults_->ready.reset();
        arm_timer();
    }
}

void Net::process_queues() {
    std::lock_guard lock(mutex_);
    transmit();
    receive();  // the kick may have been new receive buffers
}

void Net::transmit() {
    if (tx_ == nullptr) return;
    bool used = false;
    do {
        while (auto chain = tx_->pop()) {
            const size_t bytes = chain->readable_bytes();
            if (faults_ && bytes >= kHeader && !chain->readable.empty()) {
                transmit_faulty(*chain, bytes);
            } else if (bytes >= kHeader && !chain->readable.empty()) {
                const ssize_t n = ::writev(tap_.fd(), chain->readable.data(), static_cast<int>(chain->readable.size()));
                if (n < 0) {
                    ++counters_.tx_dropped;
                } else {
                    ++counters_.tx_packets;
                    counters_.tx_bytes += bytes - kHeader;
                }
            } else {
                ++counters_.tx_dropped;
            }
            tx_->push(chain->head, 0);
            used = true;
        }
    } while (tx_->enable_notifications());
    if (used && tx_->needs_interrupt()) interrupt_->raise(abi::kInterruptUsedBuffer);
    if (faults_ && used) {
        send_due_frames();
        arm_timer();
    }
}

void Net::announce(uint32_t ipv4) {
    // virtio_net_hdr (no offload), Ethernet to broadcast, ARP request with sender = target.
    uint8_t frame[kHeader + 14 + 28] = {};
    uint8_t* ethernet = frame + kHeader;
    std::memset(ethernet, 0xff, 6);
    std::memcpy(ethernet + 6, mac_.data(), 6);
    ethernet[12] = 0x08;
    ethernet[13] = 0x06;
    uint8_t* arp = ethernet + 14;
    const uint8_t fixed[8] = {0, 1, 0x08, 0x00, 6, 4, 0, 1};  // Ethernet, IPv4, request
    std::memcpy(arp, fixed, sizeof(fixed));
    std::memcpy(arp + 8, mac_.data(), 6);
    std::memcpy(arp + 14, &ipv4, 4);
    std::memcpy(arp + 24, &ipv4, 4);
    std::lock_guard lock(mutex_);
    if (::write(tap_.fd(), frame, sizeof(frame)) == static_cast<ssize_t>(sizeof(frame))) {
        ++counters_.tx_packets;
        counters_.tx_bytes += sizeof(frame) - kHeader;
    } else {
        ++counters_.tx_dropped;
    }
}

bool Net::read_frame() {
    const ssize_t n = ::read(tap_.fd(), pending_.data(), pending_.size());
    if (n <= 0) return false;
    pending_size_ = static_cast<size_t>(n);
    return true;
}

// Copies the frame into as many receive chains as it needs. False if the guest has not given
// enough buffers yet (the frame stays pending until it does).
bool Net::deliver(std::span<const uint8_t> frame) {
    const size_t size = frame.size();
    struct Used {
        uint16_t head;
        uint32_t len;
    };
    Used used[64];
    size_t chains = 0, copied = 0;
    uint8_t* first_header = nullptr;
    while (copied < size) {
        auto chain = rx_->pop();
        if (!chain) {
            // Not enough room now. Chains taken cannot be handed back unused: return them empty
            // would lose them for good, so a frame that does not fit is dropped instead.
            for (size_t i = 0; i < chains; ++i) rx_->push(used[i].head, 0);
            if (chains > 0) ++counters_.rx_dropped;
            return chains > 0;
        }
        size_t len = 0;
        for (const iovec& v : chain->writable) {
            const size_t n = std::min(v.iov_len, size - copied);
            if (first_header == nullptr && v.iov_len >= kHeader) first_header = static_cast<uint8_t*>(v.iov_base);
            std::memcpy(v.iov_base, frame.data() + copied, n);
            copied += n;
            len += n;
            if (copied == size) break;
        }
        used[chains++] = {chain->head, static_cast<uint32_t>(len)};
        if (!mergeable_ || chains == 64) break;
    }
    if (copied < size) {  // too big for the buffers: drop it
        ++counters_.rx_dropped;
    } else {
        if (first_header != nullptr) {
            const uint16_t buffers = static_cast<uint16_t>(chains);
            std::memcpy(first_header + offsetof(abi::NetHeader, num_buffers), &buffers, 2);
        }
        ++counters_.rx_packets;
        counters_.rx_bytes += size - kHeader;
    }
    for (size_t i = 0; i < chains; ++i) rx_->push(used[i].head, used[i].len);
    return true;
}

void Net::receive() {
    if (rx_ == nullptr) return;
    if (faults_) {
        receive_faulty();
        return;
    }
    bool used = false;
    for (;;) {
        if (pending_size_ == 0 && !read_frame()) break;
        if (!deliver_pending()) {
            // No receive buffers: wait for the guest's kick. If it added some meanwhile, go on.
            if (!rx_->enable_notifications()) break;
            continue;
        }
        pending_size_ = 0;
        used = true;
    }
    if (used && rx_->needs_interrupt()) interrupt_->raise(abi::kInterruptUsedBuffer);
}

// The fault path. Frames are copied onto the link in the direction they travel; whatever is due
// goes on at once, the rest when the timer fires.

void Net::transmit_faulty(const Chain& chain, size_t bytes) {
    FaultyLink::Frame frame(bytes);
    size_t offset = 0;
    for (const iovec& v : chain.readable) {
        std::memcpy(frame.data() + offset, v.iov_base, v.iov_len);
        offset += v.iov_len;
    }
    switch (faults_->to_tap.offer(std::move(frame), FaultyLink::Clock::now())) {
        case FaultyLink::Offer::kQueued: break;
        case FaultyLink::Offer::kLost: ++counters_.tx_lost; break;
        case FaultyLink::Offer::kOverflow: ++counters_.tx_dropped; break;
    }
}

void Net::send_due_frames() {
    const auto now = FaultyLink::Clock::now();
    while (auto frame = faults_->to_tap.pop_due(now)) {
        if (::write(tap_.fd(), frame->data(), frame->size()) < 0) {
            ++counters_.tx_dropped;
        } else {
            ++counters_.tx_packets;
            counters_.tx_bytes += frame->size() - kHeader;
        }
    }
}

void Net::receive_faulty() {
    const auto now = FaultyLink::Clock::now();
    // Everything the tap has goes onto the link at once: from here the link's clock decides when
    // a frame reaches the guest (the link's queue limit, not the tap's, drops a flood).
    while (read_frame()) {
        const auto end = pending_.begin() + static_cast<ptrdiff_t>(pending_size_);
        const auto offer = faults_->to_guest.offer(FaultyLink::Frame(pending_.begin(), end), now);
        if (offer == FaultyLink::Offer::kLost) ++counters_.rx_lost;
        if (offer == FaultyLink::Offer::kOverflow) ++counters_.rx_dropped;
        pending_size_ = 0;
    }
    bool used = false;
    for (;;) {
        if (!faults_->ready) {
            faults_->ready = faults_->to_guest.pop_due(now);
            if (!faults_->ready) break;
        }
        if (!deliver(*faults_->ready)) {
            // No receive buffers: the guest's kick brings us back (see receive()).
            if (!rx_->enable_notifications()) break;
            continue;
        }
        faults_->ready.reset();
        used = true;
    }
    if (used && rx_->needs_interrupt()) interrupt_->raise(abi::kInterruptUsedBuffer);
    arm_timer();
}

// Sets the timer for the earliest frame due. A frame to the guest that waits for receive buffers
// waits for the guest's kick, not the timer, which would otherwise fire again and again.
void Net::arm_timer() {
    std::optional<FaultyLink::Clock::time_point> due = faults_->to_tap.next_due();
    if (!faults_->ready) {
        const auto to_guest = faults_->to_guest.next_due();
        if (to_guest && (!due || *to_guest < *due)) due = to_guest;
    }
    itimerspec spec{};  // all zero: disarmed
    if (due) {
        // steady_clock is CLOCK_MONOTONIC; a time already past is 1 ns (zero would disarm).
        using std::chrono::nanoseconds;
        const int64_t ns =
            std::max<int64_t>(std::chrono::duration_cast<nanoseconds>(due->time_since_epoch()).count(), 1);
        spec.it_value.tv_sec = ns / 1000000000;
        spec.it_value.tv_nsec = ns % 1000000000;
    }
    ::timerfd_settime(faults_->timer.get(), TFD_TIMER_ABSTIME, &spec, nullptr);
}

void Net::on_timer() {
    uint64_t expirations;
    (void)!::read(faults_->timer.get(), &expirations, sizeof(expirations));
    std::lock_guard lock(mutex_);
    send_due_frames();
    if (rx_ != nullptr)
        receive_faulty();
    else
        arm_timer();
}

}  // namespace kiln::vmm::virtio
