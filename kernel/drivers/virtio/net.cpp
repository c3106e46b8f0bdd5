// virtio-net driver: 2 KiB receive buffers handed to the device in advance, transmit straight
// from the stack's packets (virtio-net header prepended in their headroom), checksum offload and
// TSO when the device has them. Interrupts only for received frames, and under kiln-vmm without a
// single register read: its registers are an exit to user space, its rings are not.
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/ioapic.h"
#include "console/console.h"
#include "core/boot_env.h"
#include "drivers/virtio/mmio.h"
#include "drivers/virtio/queue.h"
#include "lib/string.h"
#include "mm/layout.h"
#include "net/interface.h"
#include "net/stack.h"
#include "net/virtio_header.h"
#include "platform/platform.h"

namespace kiln::net {
namespace {

namespace abi = kiln::abi::virtio;

constexpr uint16_t kRxQueue = 0, kTxQueue = 1;
constexpr uint16_t kQueueSize = 256;
constexpr size_t kHeader = sizeof(abi::NetHeader);
constexpr size_t kRxBuffer = kHeader + 1514;

// The card whose interrupt must be acknowledged, or null. The virtio-mmio transport of other
// monitors (QEMU's) holds its interrupt line up until InterruptStatus is acknowledged, and the
// I/O APIC pin is edge-triggered: unacknowledged, the line never falls, so no later frame makes
// an edge (under KVM's I/O APIC not one interrupt after the first). kiln-vmm signals each
// interrupt as an edge of its own (an irqfd), and there the register read would be an exit.
virtio::MmioDevice* level_triggered_card = nullptr;

void on_card_interrupt(arch::InterruptFrame&) {
    // Acknowledged before the wake: the poll it leads to sees every frame the device had used
    // when the line fell, and a later one raises it again.
    if (level_triggered_card != nullptr) level_triggered_card->take_interrupt();
    wake_from_interrupt();
}

class VirtioNet final : public NetDevice {
  public:
    explicit VirtioNet(virtio::MmioDevice device) : device_(device) {}

    bool start() {
        uint64_t features = 0;
        const uint64_t wanted = abi::kFeatureRingEventIdx | abi::kNetFeatureMac | abi::kNetFeatureCsum |
                                abi::kNetFeatureGuestCsum | abi::kNetFeatureHostTso4 | abi::kNetFeatureStatus;
        if (!device_.begin(wanted, features) || !(features & abi::kFeatureRingEventIdx)) {
            device_.fail();
            return false;
        }
        checksum_ = features & abi::kNetFeatureCsum;
        tso_ = checksum_ && (features & abi::kNetFeatureHostTso4);
        if (features & abi::kNetFeatureMac)
            for (uint32_t i = 0; i < 6; ++i) mac_[i] = device_.config8(i);
        if (!device_.setup_queue(kRxQueue, rx_, kQueueSize) || !device_.setup_queue(kTxQueue, tx_, kQueueSize)) {
            device_.fail();
            return false;
        }
        refill();
        rx_.arm_interrupt();
        const uint8_t vector = static_cast<uint8_t>(ioapic::kFirstDeviceVector + device_.irq());
        if (!boot_env().under_kiln_vmm) level_triggered_card = &device_;
        arch::set_interrupt_handler(vector, on_card_interrupt);
        ioapic::route(device_.irq(), vector);
        device_.driver_ok();
        if (rx_.needs_kick()) device_.notify(kRxQueue);
        return true;
    }

    const uint8_t* mac() const override { return mac_; }
    bool checksum_offload() const override { return checksum_; }
    bool segmentation_offload() const override { return tso_; }

    void transmit(Packet* p) override {
        reclaim();
        if (p->headroom() < kHeader) {
            free_packet(p);
            return;
        }
        const abi::NetHeader h = transmit_header(*p);
        memcpy(p->push(kHeader), &h, kHeader);
        const virtio::Buffer b{mm::virt_to_phys(p->data()), static_cast<uint32_t>(p->length), false};
        platform::IrqGuard guard;
        if (!tx_.add(&b, 1, p)) {
            free_packet(p);  // the ring is full of frames the device has not taken: drop
            return;
        }
        if (tx_.needs_kick()) device_.notify(kTxQueue);
    }

    void poll() override {
        do {
            uint32_t written;
            while (void* token = rx_.take_used(written)) {
                auto* p = static_cast<Packet*>(token);
                if (written < kHeader || written > kRxBuffer) {
                    free_packet(p);
                    continue;
                }
                abi::NetHeader h;
                memcpy(&h, p->data(), kHeader);
                p->length = written;
                p->checksum_verified = received_checksum_verified(h);
                p->pull(kHeader);
                deliver_frame(p);
            }
            refill();
            if (rx_.needs_kick()) device_.notify(kRxQueue);
        } while (rx_.arm_interrupt());
        reclaim();
    }

  private:
    void refill() {
        while (rx_.free_descriptors() > 0) {
            Packet* p = allocate_packet(kRxBuffer, 0);
            if (p == nullptr) return;
            p->length = 0;
            const virtio::Buffer b{mm::virt_to_phys(p->buffer), static_cast<uint32_t>(kRxBuffer), true};
            if (!rx_.add(&b, 1, p)) {
                free_packet(p);
                return;
            }
        }
    }

    void reclaim() {
        platform::IrqGuard guard;
        uint32_t written;
        while (void* token = tx_.take_used(written)) free_packet(static_cast<Packet*>(token));
    }

    virtio::MmioDevice device_;
    virtio::Queue rx_, tx_;
    uint8_t mac_[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};
    bool checksum_ = false;
    bool tso_ = false;
};

}  // namespace

bool start_virtio_net(const Cmdline& cmdline) {
    bool started = false;
    virtio::for_each_device(cmdline, [&started](virtio::MmioDevice& d) {
        if (started || d.device_id() != abi::kNet) return;
        auto* net = new VirtioNet(d);
        if (!net->start()) {
            console::print("kiln: virtio-net at irq {}: the device refused our features\n", d.irq());
            return;
        }
        attach_device(net);
        started = true;
    });
    return started;
}

}  // namespace kiln::net
