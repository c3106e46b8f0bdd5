#include "net/ipv4.h"

#include "lib/string.h"
#include "net/arp.h"
#include "net/bytes.h"
#include "net/interface.h"
#include "net/tcp.h"
#include "net/udp.h"

namespace kiln::net {
namespace {

constinit NetCounters the_counters = {};
constinit uint16_t next_id = 1;

void receive_icmp(Packet* packet, const Ipv4Info& ip) {
    constexpr uint8_t kEchoRequest = 8, kEchoReply = 0;
    uint8_t* m = packet->data();
    if (packet->length < 8 || m[0] != kEchoRequest || checksum_fold(checksum_add(0, m, packet->length)) != 0) {
        free_packet(packet);
        return;
    }
    ++the_counters.icmp_echo;
    // The reply is the request with its type changed: reuse the packet.
    m[0] = kEchoReply;
    m[2] = m[3] = 0;
    const uint16_t sum = checksum_fold(checksum_add(0, m, packet->length));
    memcpy(m + 2, &sum, 2);
    output_ipv4(packet, ip.destination, ip.source, kProtoIcmp);
}

}  // namespace

NetCounters& counters() { return the_counters; }

void receive_ipv4(Packet* packet) {
    ++the_counters.ipv4_received;
    const uint8_t* h = packet->data();
    auto drop = [packet] {
        ++the_counters.ipv4_dropped;
        free_packet(packet);
    };
    if (packet->length < kIpv4HeaderSize || (h[0] >> 4) != 4) return drop();
    const size_t header = (h[0] & 0xf) * 4u;
    const uint16_t total = load16(h + 2);
    if (header < kIpv4HeaderSize || header > packet->length || total < header || total > packet->length) return drop();
    if (checksum_fold(checksum_add(0, h, header)) != 0) return drop();
    const uint16_t fragment = load16(h + 6);
    if ((fragment & 0x2000) || (fragment & 0x1fff)) return drop();  // fragments are not reassembled
    Ipv4Info ip{load32(h + 12), load32(h + 16), h[9], h[8]};
    if (!is_local_address(ip.destination) && ip.destination != 0xffffffff) return drop();
    packet->length = total;  // Ethernet padding off
    packet->pull(header);
    switch (ip.protocol) {
        case kProtoTcp: receive_tcp(packet, ip); break;
        case kProtoUdp: receive_udp(packet, ip); break;
        case kProtoIcmp: receive_icmp(packet, ip); break;
        default: drop(); break;
    }
}

void output_ipv4(Packet* packet, uint32_t source, uint32_t destination, uint8_t protocol) {
    if (packet->headroom() < kIpv4HeaderSize + 14) {
        free_packet(packet);
        return;
    }
    const size_t payload = packet->length;
    uint8_t* h = packet->push(kIpv4HeaderSize);
    h[0] = 0x45;
    h[1] = 0;
    store16(h + 2, static_cast<uint16_t>(payload + kIpv4HeaderSize > 0xffff ? 0 : payload + kIpv4HeaderSize));
    store16(h + 4, next_id++);
    store16(h + 6, 0x4000);  // don't fragment
    h[8] = 64;
    h[9] = protocol;
    h[10] = h[11] = 0;
    store32(h + 12, source);
    store32(h + 16, destination);
    const uint16_t sum = checksum_fold(checksum_add(0, h, kIpv4HeaderSize));
    memcpy(h + 10, &sum, 2);
    if (packet->needs_checksum)
        packet->checksum_start = static_cast<uint16_t>(packet->checksum_start + kIpv4HeaderSize);
    send_ipv4(packet, destination);
}

}  // namespace kiln::net
