// The virtio-net header in front of every frame, shared by the two devices that speak it: the
// virtio-net driver (drivers/virtio/net.cpp) and the proc backend's tap (platform/proc/tap.cpp),
// whose host kernel reads and writes the same header (IFF_VNET_HDR).
#pragma once

#include "kiln/virtio.h"
#include "net/packet.h"

namespace kiln::net {

// What a transmitted packet asks of the device: a checksum to fill in, a TSO packet to segment.
inline abi::virtio::NetHeader transmit_header(const Packet& p) {
    abi::virtio::NetHeader h{};
    if (!p.needs_checksum) return h;
    h.flags = abi::virtio::kNetHeaderNeedsCsum;
    h.csum_start = p.checksum_start;
    h.csum_offset = p.checksum_offset;
    if (p.segment_size) {
        // Everything up to the end of the TCP header, whose length is in the header.
        const uint8_t* tcp = p.data() + p.checksum_start;
        h.gso_type = abi::virtio::kNetGsoTcpV4;
        h.gso_size = p.segment_size;
        h.hdr_len = static_cast<uint16_t>(p.checksum_start + (tcp[12] >> 4) * 4);
    }
    return h;
}

// A received frame's checksum needs no check when the other end left it to be filled in (it
// never crossed a wire) or checked it already.
inline bool received_checksum_verified(const abi::virtio::NetHeader& h) {
    constexpr uint8_t kDataValid = 2;
    return (h.flags & (abi::virtio::kNetHeaderNeedsCsum | kDataValid)) != 0;
}

}  // namespace kiln::net
