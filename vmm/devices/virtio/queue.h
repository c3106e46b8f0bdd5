// A split virtqueue as the device sees it. Everything the driver wrote (ring indices, descriptor
// addresses, lengths, flags, next links) is read once and checked: a chain that points outside
// guest memory, loops, or is longer than the queue makes the queue fail, never kiln-vmm.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "kiln/virtio.h"
#include "kvm/guest_memory.h"

namespace kiln::vmm::virtio {

struct Chain {
    uint16_t head;
    std::vector<iovec> readable;  // driver -> device
    std::vector<iovec> writable;  // device -> driver
    size_t readable_bytes() const;
    size_t writable_bytes() const;
};

class Queue {
  public:
    static constexpr uint16_t kMaxSize = 256;

    // Driver-written configuration, as the transport collects it.
    uint16_t size = kMaxSize;
    uint64_t desc_gpa = 0;
    uint64_t avail_gpa = 0;
    uint64_t used_gpa = 0;
    bool ready = false;

    // Checks the configuration against guest memory; false if the queue cannot be used.
    bool activate(const GuestMemory& memory, bool event_idx);
    void reset();
    bool active() const { return memory_ != nullptr; }
    // The queue saw a malformed chain and stopped; the device must be reset to use it again.
    bool broken() const { return broken_; }

    // The next chain the driver made available, if any.
    std::optional<Chain> pop();
    // Returns a chain to the driver with `written` bytes in its writable part.
    void push(uint16_t head, uint32_t written);
    // After pushes: does the driver want an interrupt (event index or the no-interrupt flag)?
    bool needs_interrupt();
    // Snapshots: the driver's configuration and the device's position in the rings.
    struct State {
        uint64_t desc_gpa, avail_gpa, used_gpa;
        uint16_t size, last_avail, used_idx, last_signalled_used;
        uint8_t ready, active, event_idx, broken;
        uint8_t pad[4];
    };
    State save() const;
    // False if the saved configuration does not fit `memory`.
    bool restore(const State& state, const GuestMemory& memory);

    // Asks the driver to notify again once it adds buffers beyond what has been seen; returns
    // true if buffers arrived meanwhile (the caller then processes them before sleeping).
    bool enable_notifications();

    // Where device and driver stand in the rings, for `stats`: which side a stalled queue waits
    // for (a kick the driver owes: avail_event reached and nothing new; an interrupt the device
    // owes: used_idx past used_event and never signalled).
    struct Positions {
        uint16_t avail_idx, last_avail, avail_event;         // the driver's, the device's, the kick's
        uint16_t used_idx, last_signalled_used, used_event;  // the device's, the interrupt's
        bool broken;                                         // stopped at a malformed chain
    };
    std::optional<Positions> positions() const;

  private:
    // Where the split ring's fields are (virtio 1.2, 2.7): the driver's index, the event-index
    // fields at the end of each ring.
    uint64_t avail_idx_gpa() const { return avail_gpa + 2; }
    uint64_t used_event_gpa() const { return avail_gpa + 4 + 2ull * size; }
    uint64_t avail_event_gpa() const { return used_gpa + 4 + 8ull * size; }
    uint16_t read_u16(uint64_t gpa) const;
    void write_u16(uint64_t gpa, uint16_t value);
    bool fail();

    const GuestMemory* memory_ = nullptr;
    bool event_idx_ = false;
    bool broken_ = false;
    uint16_t last_avail_ = 0;
    uint16_t used_idx_ = 0;
    uint16_t last_signalled_used_ = 0;
};

}  // namespace kiln::vmm::virtio
