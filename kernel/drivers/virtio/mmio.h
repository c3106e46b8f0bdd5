// The guest side of virtio-mmio (version 2): finding devices from the command line
// (virtio_mmio.device=4K@0xADDR:IRQ, the Linux spelling), and the initialisation sequence of
// virtio 1.2 section 3.1.
#pragma once

#include <stdint.h>

#include "drivers/virtio/queue.h"
#include "lib/cmdline.h"

namespace kiln::virtio {

class MmioDevice {
  public:
    MmioDevice(uint64_t phys, uint32_t irq) : phys_(phys), irq_(irq) {}

    uint32_t device_id() const;
    uint32_t irq() const { return irq_; }
    // Resets the device and negotiates: the features it offers ANDed with `wanted`. False if
    // the device refuses (FEATURES_OK does not stick).
    bool begin(uint64_t wanted, uint64_t& negotiated);
    bool setup_queue(uint16_t index, Queue& queue, uint16_t size);
    void driver_ok();
    void fail();
    void notify(uint16_t queue);
    // Reads and acknowledges the interrupt status.
    uint32_t take_interrupt();
    uint8_t config8(uint32_t offset) const;
    uint16_t config16(uint32_t offset) const;

  private:
    uint32_t read(uint32_t reg) const;
    void write(uint32_t reg, uint32_t value);
    uint64_t phys_;
    uint32_t irq_;
};

// Calls `found(device)` for every virtio-mmio device the command line announces.
template <typename F>
void for_each_device(const Cmdline& cmdline, F found);

// Parses "4K@0xd0000000:5". False if malformed.
bool parse_device_parameter(StringView text, uint64_t& phys, uint32_t& irq);

template <typename F>
void for_each_device(const Cmdline& cmdline, F found) {
    for (size_t i = 0; i < cmdline.param_count(); ++i) {
        Cmdline::Param p = cmdline.param(i);
        if (p.key != "virtio_mmio.device") continue;
        uint64_t phys;
        uint32_t irq;
        if (!parse_device_parameter(p.value, phys, irq)) continue;
        MmioDevice device(phys, irq);
        found(device);
    }
}

}  // namespace kiln::virtio
