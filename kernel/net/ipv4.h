// IPv4: header checks on receive, header building on send, ICMP echo.
#pragma once

#include <stdint.h>

#include "net/packet.h"

namespace kiln::net {

inline constexpr uint8_t kProtoIcmp = 1, kProtoTcp = 6, kProtoUdp = 17;
inline constexpr size_t kIpv4HeaderSize = 20;

struct Ipv4Info {
    uint32_t source;
    uint32_t destination;
    uint8_t protocol;
    uint8_t ttl;
};

// A received IPv4 packet (the IP header at data()). Takes ownership.
void receive_ipv4(Packet* packet);

// Prepends an IPv4 header (no options) for a payload already at data() and sends it.
void output_ipv4(Packet* packet, uint32_t source, uint32_t destination, uint8_t protocol);

struct NetCounters {
    uint64_t ipv4_received, ipv4_dropped, tcp_received, tcp_dropped, udp_received, udp_dropped, icmp_echo;
};
NetCounters& counters();

}  // namespace kiln::net
