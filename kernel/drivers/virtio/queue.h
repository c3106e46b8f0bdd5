// A split virtqueue as the driver sees it: descriptor table, available and used rings in
// physically contiguous pages, a free list of descriptors, and event-index notification
// suppression (a kick only when the device asked for one).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kiln/virtio.h"

namespace kiln::virtio {

struct Buffer {
    uint64_t phys;
    uint32_t length;
    bool device_writes;
};

class Queue {
  public:
    // Allocates the rings for `size` entries (a power of two). False if memory ran out.
    bool init(uint16_t size);

    uint16_t size() const { return size_; }
    uint64_t desc_phys() const;
    uint64_t avail_phys() const;
    uint64_t used_phys() const;

    // Adds a chain; `token` comes back from take_used(). False if descriptors ran out.
    bool add(const Buffer* buffers, size_t count, void* token);
    size_t free_descriptors() const { return free_count_; }
    // True if the device wants a kick for what was added since the last call.
    bool needs_kick();

    // The next chain the device returned, with the bytes it wrote; null if none.
    void* take_used(uint32_t& written);
    // Asks for an interrupt when the next used entry appears; true if one already has.
    bool arm_interrupt();
    void disarm_interrupt();

  private:
    uint16_t size_ = 0;
    abi::virtio::Descriptor* desc_ = nullptr;
    volatile uint16_t* avail_ = nullptr;  // flags, idx, ring[size], used_event
    volatile uint8_t* used_ = nullptr;    // flags, idx, ring[size] of {id, len}, avail_event
    void** tokens_ = nullptr;
    uint16_t free_head_ = 0;
    uint16_t free_count_ = 0;
    uint16_t avail_idx_ = 0;
    uint16_t kicked_idx_ = 0;
    uint16_t last_used_ = 0;
};

}  // namespace kiln::virtio
