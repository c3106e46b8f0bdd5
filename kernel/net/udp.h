// UDP: endpoints bound to ports, datagrams queued for them, and sending.
#pragma once

#include <stdint.h>

#include "fs/file.h"
#include "lib/ref_ptr.h"
#include "net/ipv4.h"
#include "net/packet.h"
#include "sched/thread.h"

namespace kiln::net::udp {

struct Endpoint : RefCounted {
    ~Endpoint() override;
    uint32_t local_ip = 0;
    uint16_t local_port = 0;  // 0: not bound
    uint32_t remote_ip = 0;   // connect()ed peer, 0: none
    uint16_t remote_port = 0;
    PacketList queue;  // payload at data(), source in source_ip/source_port
    size_t queued_bytes = 0;
    sched::WaitQueue waiters;
    fs::File* socket = nullptr;
};

int64_t bind(Endpoint& e, uint32_t ip, uint16_t port);  // port 0: an ephemeral one
void unbind(Endpoint& e);
int64_t send(Endpoint& e, uint32_t destination, uint16_t port, const fs::IoBuffer& data, size_t size);

void receive_udp(Packet* packet, const Ipv4Info& ip);

}  // namespace kiln::net::udp

namespace kiln::net {
using udp::receive_udp;
}
