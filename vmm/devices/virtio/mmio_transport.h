// The virtio-mmio (version 2) transport: the register file a driver programs, feature
// negotiation, queue set-up, and the wiring to KVM: queue kicks through an ioeventfd on the
// QueueNotify register (no exit to kiln-vmm) and interrupts through an irqfd.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/mmio_bus.h"
#include "devices/virtio/device.h"
#include "event_loop.h"
#include "host/unique_fd.h"
#include "kvm/guest_memory.h"
#include "kvm/vm.h"

namespace kiln::vmm::virtio {

class MmioTransport final : public MmioDevice {
  public:
    MmioTransport(std::unique_ptr<Device> device, GuestMemory& memory, Vm& vm, EventLoop& loop, uint64_t base,
                  uint32_t gsi);
    ~MmioTransport() override;

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Snapshots: the register file and every queue. restore_state() also re-activates the device
    // if the driver had it running. Throws VmmError on a state that does not fit.
    std::vector<uint8_t> save_state();
    void restore_state(const std::vector<uint8_t>& state);

    // The kernel command-line word that announces the device: virtio_mmio.device=4K@0xADDR:IRQ.
    std::string cmdline_parameter() const;
    Device& device() { return *device_; }
    const Device& device() const { return *device_; }

  private:
    uint32_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint32_t value);
    void set_status(uint32_t status);
    Queue* selected_queue();

    std::unique_ptr<Device> device_;
    GuestMemory& memory_;
    EventLoop& loop_;
    uint64_t base_;
    uint32_t gsi_;
    UniqueFd kick_;  // ioeventfd
    UniqueFd irq_;   // irqfd
    Interrupt interrupt_;

    std::mutex mutex_;
    std::vector<Queue> queues_;
    uint32_t status_ = 0;
    uint32_t device_features_sel_ = 0;
    uint32_t driver_features_sel_ = 0;
    uint64_t driver_features_ = 0;
    uint32_t queue_sel_ = 0;
    uint32_t config_generation_ = 0;
};

}  // namespace kiln::vmm::virtio
