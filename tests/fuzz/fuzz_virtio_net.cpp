// libFuzzer: a hostile driver, and hostile frames from the host side, against kiln-vmm's
// virtio-net device model (vmm/devices/virtio/net.cpp) and its split virtqueues (queue.cpp). Each
// input lays out a small guest memory: both queues' descriptors (addresses anywhere, inside and
// past the memory; any lengths, flags and links), their available rings and the data the
// transmit chains carry; then frames of any size arrive on the "tap" (a SOCK_SEQPACKET socket:
// one frame per message, as a tap's reads give them), with or without the fault model in the
// way. The device then transmits and receives all it can. Nothing may crash, and no byte may move
// outside guest memory or a frame (AddressSanitizer watches both).
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "devices/virtio/net.h"
#include "fuzz_input.h"
#include "kvm/guest_memory.h"

namespace kiln::vmm::virtio {
// The transport's interrupt writes to KVM's irqfd; here there is none.
void Interrupt::raise(uint32_t status_bits) { status_.fetch_or(status_bits); }
}  // namespace kiln::vmm::virtio

namespace {

using namespace kiln::vmm;
using kiln::UniqueFd;
using kiln::fuzz::FuzzInput;
namespace abi = kiln::abi::virtio;

constexpr uint64_t kMemory = 64 << 10;
constexpr uint64_t kDataGpa = 0x2000;
constexpr uint16_t kQueueSize = 16;
constexpr size_t kMaxFrames = 24;

struct Layout {
    uint64_t desc, avail, used;
};
constexpr Layout kRx{0x0, 0x400, 0x800}, kTx{0x1000, 0x1400, 0x1800};

// One queue's descriptors and available ring, from the input.
void lay_out(GuestMemory& memory, FuzzInput& in, const Layout& at, bool raw_addresses) {
    const auto count = static_cast<uint16_t>(in.take<uint8_t>() % (kQueueSize + 1));
    for (uint16_t i = 0; i < count; ++i) {
        abi::Descriptor d{};
        const auto where = in.take<uint16_t>();
        d.addr = raw_addresses ? in.take<uint64_t>() : uint64_t{where} * 16 % (kMemory + 0x1000) + kDataGpa;
        d.len = in.take<uint16_t>();
        d.flags = in.take<uint8_t>() & 7;
        d.next = in.take<uint8_t>() % (kQueueSize + 2);
        std::memcpy(memory.host_base() + at.desc + i * sizeof(d), &d, sizeof(d));
    }
    for (uint16_t i = 0; i < kQueueSize; ++i) {
        const auto head = static_cast<uint16_t>(in.take<uint8_t>() % (kQueueSize + 2));
        std::memcpy(memory.host_base() + at.avail + 4 + 2 * i, &head, 2);
    }
    const uint16_t avail_idx = in.take<uint8_t>();
    std::memcpy(memory.host_base() + at.avail + 2, &avail_idx, 2);
    const uint16_t used_event = in.take<uint8_t>();
    std::memcpy(memory.host_base() + at.avail + 4 + 2 * kQueueSize, &used_event, 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static GuestMemory memory(kMemory);
    static EventLoop loop;  // never started: the device's handlers are called here
    std::memset(memory.host_base(), 0, kMemory);
    FuzzInput in(data, size);
    const auto mode = in.take<uint8_t>();
    const bool event_idx = mode & 1, raw_addresses = mode & 2, faults = mode & 4;
    uint64_t features = abi::kFeatureVersion1;
    if (mode & 8) features |= abi::kNetFeatureMrgRxbuf;
    if (mode & 16) features |= abi::kNetFeatureGuestCsum | abi::kNetFeatureGuestTso4;
    lay_out(memory, in, kRx, raw_addresses);
    lay_out(memory, in, kTx, raw_addresses);
    // What the transmit chains carry: the next 8 KiB of the input, at the data area.
    const auto payload = in.bytes(8 << 10);
    std::memcpy(memory.host_base() + kDataGpa, payload.data(), payload.size());

    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) != 0) __builtin_trap();
    UniqueFd host(ends[1]);
    FaultSettings settings;
    if (faults) {
        settings.loss_percent = 20;
        settings.reorder_percent = 20;
        settings.seed = mode;
    }
    virtio::Net net(Tap::adopt(UniqueFd(ends[0]), "fuzz"), {0x52, 0x54, 0, 0, 0, 1}, loop, settings);
    // Frames from the host side: any size, a virtio_net_hdr's worth or not.
    const auto frames = in.take<uint8_t>() % (kMaxFrames + 1);
    for (size_t i = 0; i < frames; ++i) {
        const auto frame = in.bytes(in.take<uint16_t>() % 4096);
        (void)!::send(host.get(), frame.data(), frame.size(), MSG_DONTWAIT);
    }
    uint8_t config[16];
    net.read_config(in.take<uint8_t>() % 32, config);

    std::vector<virtio::Queue> queues(2);
    for (size_t q = 0; q < 2; ++q) {
        const Layout& at = q == 0 ? kRx : kTx;
        queues[q].size = kQueueSize;
        queues[q].desc_gpa = at.desc;
        queues[q].avail_gpa = at.avail;
        queues[q].used_gpa = at.used;
        if (!queues[q].activate(memory, event_idx)) __builtin_trap();
    }
    virtio::Interrupt interrupt(-1);
    net.activate(queues, features, interrupt);
    net.process_queues();
    net.announce(0x0100000a);
    bool waiting = false;
    (void)net.receive_positions(waiting);
    // What the device sent to the host side: every message whole, none past what it read.
    static std::vector<uint8_t> sent(1 << 17);
    while (::recv(host.get(), sent.data(), sent.size(), MSG_DONTWAIT) > 0) {
    }
    net.reset();
    return 0;
}
