// The proc backend's network card: the tap kiln-proc opened (IFF_VNET_HDR), its descriptor in the
// handoff. A frame is one host read or write with the virtio-net header in front, so the host
// kernel fills in checksums and segments TSO packets as it does for kiln-vmm's virtio-net: a
// bulk sender writes 64 KiB per host call. The tap raises no signal (a SIGIO per frame cost a
// fifth of a loaded instance's time): the kernel's idle ppoll waits on it, and while the kernel is
// busy a 1 ms tick looks at it (interrupts.cpp); either wakes the network thread, which reads
// until the tap is empty.
#include "arch/x86_64/interrupts.h"
#include "lib/string.h"
#include "net/interface.h"
#include "net/stack.h"
#include "net/virtio_header.h"
#include "platform/proc/host.h"
#include "platform/proc/proc.h"

namespace kiln::proc {
namespace {

constexpr size_t kHeader = sizeof(abi::virtio::NetHeader);
constexpr size_t kRxBuffer = kHeader + 1514;  // the host sends no GSO frames: TUN_F_CSUM only
constexpr long kEintr = -4, kEagain = -11;

class TapDevice final : public net::NetDevice {
  public:
    explicit TapDevice(const uint8_t (&mac)[6]) { memcpy(mac_, mac, sizeof(mac_)); }

    const uint8_t* mac() const override { return mac_; }
    bool checksum_offload() const override { return true; }
    bool segmentation_offload() const override { return true; }
    // No polling needed: every frame wakes the network thread, from idle at once, else within the
    // busy tick.
    bool interrupts_every_frame() const override { return true; }

    // A snapshot's card restored without a tap (kiln-proc --restore without --net) is unplugged:
    // it sends into nothing and receives nothing.
    void transmit(net::Packet* p) override {
        if (fd() >= 0 && p->headroom() >= kHeader) {
            const abi::virtio::NetHeader h = net::transmit_header(*p);
            memcpy(p->push(kHeader), &h, kHeader);
            long written;
            do written = host::write(fd(), p->data(), p->length);
            while (written == kEintr);
            // A full tap queue (EAGAIN) drops the frame, as a full virtio ring does: TCP resends.
        }
        net::free_packet(p);
    }

    void poll() override {
        while (fd() >= 0) {
            if (spare_ == nullptr) spare_ = net::allocate_packet(kRxBuffer, 0);
            net::Packet* p = spare_;
            if (p == nullptr) return;  // out of memory: the frames wait in the tap
            const long n = host::read(fd(), p->buffer, kRxBuffer);
            if (n == kEintr) continue;
            if (n == kEagain || n < 0) return;
            if (static_cast<size_t>(n) < kHeader) continue;  // not a frame: the buffer is reused
            spare_ = nullptr;
            abi::virtio::NetHeader h;
            memcpy(&h, p->buffer, kHeader);
            p->head = 0;
            p->length = static_cast<size_t>(n);
            p->checksum_verified = net::received_checksum_verified(h);
            p->pull(kHeader);
            net::deliver_frame(p);
        }
    }

  private:
    // The handoff's: a process restored from a snapshot has the tap at a descriptor of its own.
    static int fd() { return handoff().net_fd; }

    uint8_t mac_[6];
    net::Packet* spare_ = nullptr;  // a receive buffer the last empty read left unused
};

}  // namespace
}  // namespace kiln::proc

namespace kiln::platform {

bool ProcBackend::start_network_device() {
    const abi::ProcHandoff& h = proc::handoff();
    if (h.net_fd < 0) return false;
    net::attach_device(new proc::TapDevice(h.mac));
    arch::set_interrupt_handler(proc::kTapVector, [](arch::InterruptFrame&) { net::wake_from_interrupt(); });
    return true;
}

}  // namespace kiln::platform
