// What a virtio device model provides to the MMIO transport (devices/virtio/mmio_transport.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "devices/virtio/queue.h"

namespace kiln::vmm::virtio {

// The device's interrupt line: an irqfd into KVM's in-kernel IOAPIC, plus the InterruptStatus
// bits the driver reads and acknowledges.
class Interrupt {
  public:
    explicit Interrupt(int irqfd) : irqfd_(irqfd) {}
    void raise(uint32_t status_bits);
    uint32_t status() const { return status_.load(); }
    void acknowledge(uint32_t bits) { status_.fetch_and(~bits); }
    void set_status(uint32_t bits) { status_ = bits; }

  private:
    int irqfd_;
    std::atomic<uint32_t> status_{0};
};

class Device {
  public:
    virtual ~Device() = default;
    virtual uint32_t type() const = 0;
    virtual uint64_t features() const = 0;  // beyond VERSION_1, which the transport adds
    virtual size_t queue_count() const = 0;
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;

    // The driver set DRIVER_OK: the queues are checked and live. Runs on a vCPU thread.
    virtual void activate(std::span<Queue> queues, uint64_t driver_features, Interrupt& interrupt) = 0;
    // The driver reset the device (status 0). Runs on a vCPU thread.
    virtual void reset() = 0;
    // A queue kick arrived (the ioeventfd fired). Runs on the event loop's thread.
    virtual void process_queues() = 0;
};

}  // namespace kiln::vmm::virtio
