// A network packet: one contiguous buffer with room in front for headers to be prepended as it
// goes down the stack (TCP, IP, Ethernet, then the virtio-net header the device wants).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/intrusive_list.h"

namespace kiln::net {

inline constexpr size_t kHeadroom = 128;  // virtio-net 12 + Ethernet 14 + IPv4 60 + TCP 40

struct Packet {
    ListNode link;  // queues (ARP pending, out-of-order segments, loopback)
    uint8_t* buffer;
    size_t capacity;
    size_t head;                     // offset of the first valid byte
    size_t length;                   // valid bytes from head
    bool checksum_verified = false;  // the device vouched for the checksums (received packets)
    // Transmit offloads (set by TCP/UDP, consumed by the driver).
    bool needs_checksum = false;
    uint16_t checksum_start = 0;  // from the Ethernet header
    uint16_t checksum_offset = 0;
    uint16_t segment_size = 0;  // TSO: > 0 means "split into segments of this payload size"
    // Received datagrams: where they came from (UDP receive queues).
    uint32_t source_ip = 0;
    uint16_t source_port = 0;

    uint8_t* data() { return buffer + head; }
    const uint8_t* data() const { return buffer + head; }
    // Makes room for `n` bytes in front and returns them.
    uint8_t* push(size_t n) {
        head -= n;
        length += n;
        return buffer + head;
    }
    // Extends the packet by `n` bytes at its end (into the space after the headroom) and returns
    // them.
    uint8_t* put(size_t n) {
        uint8_t* tail = buffer + head + length;
        length += n;
        return tail;
    }
    // Drops `n` bytes from the front (a parsed header).
    void pull(size_t n) {
        head += n;
        length -= n;
    }
    size_t headroom() const { return head; }
};

// A packet with `payload` bytes of space after the headroom; null if memory ran out.
Packet* allocate_packet(size_t payload, size_t headroom = kHeadroom);
void free_packet(Packet* packet);

using PacketList = IntrusiveList<Packet, &Packet::link>;

}  // namespace kiln::net
