#include "net/udp.h"

#include "core/errno.h"
#include "fs/pipe.h"
#include "lib/string.h"
#include "lib/vector.h"
#include "net/bytes.h"
#include "net/interface.h"
#include "net/tcp.h"

namespace kiln::net::udp {
namespace {

constexpr size_t kHeader = 8;
constexpr size_t kMaxQueued = 256 * 1024;

Vector<Endpoint*>& endpoints() {
    static Vector<Endpoint*> list;
    return list;
}

Endpoint* find(uint32_t ip, uint16_t port) {
    for (Endpoint* e : endpoints())
        if (e->local_port == port && (e->local_ip == 0 || e->local_ip == ip)) return e;
    return nullptr;
}

constinit uint16_t next_port = 40000;

}  // namespace

Endpoint::~Endpoint() {
    unbind(*this);
    while (Packet* p = queue.pop_front()) free_packet(p);
}

int64_t bind(Endpoint& e, uint32_t ip, uint16_t port) {
    if (e.local_port != 0) return -EINVAL;
    if (port == 0) {
        for (int tries = 0; tries < 20000 && port == 0; ++tries) {
            const uint16_t candidate = next_port;
            next_port = next_port >= 60999 ? 40000 : static_cast<uint16_t>(next_port + 1);
            if (!find(ip, candidate)) port = candidate;
        }
        if (port == 0) return -EADDRINUSE;
    } else if (find(ip, port)) {
        return -EADDRINUSE;
    }
    e.local_ip = ip;
    e.local_port = port;
    if (!endpoints().push_back(&e)) return -ENOMEM;
    return 0;
}

void unbind(Endpoint& e) {
    auto& list = endpoints();
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] == &e) {
            list.erase(i);
            break;
        }
    }
    e.local_port = 0;
}

int64_t send(Endpoint& e, uint32_t destination, uint16_t port, const fs::IoBuffer& data, size_t size) {
    if (size > 65507) return -EMSGSIZE;
    if (e.local_port == 0)
        if (int64_t r = bind(e, 0, 0); r < 0) return r;
    const uint32_t source =
        e.local_ip != 0 ? e.local_ip : (is_local_address(destination) ? destination : config().address);
    Packet* p = allocate_packet(kHeader + size);
    if (p == nullptr) return -ENOBUFS;
    uint8_t* u = p->put(kHeader + size);
    if (size && data.copy_in(0, u + kHeader, size) != 0) {
        free_packet(p);
        return -EFAULT;
    }
    store16(u, e.local_port);
    store16(u + 2, port);
    store16(u + 4, static_cast<uint16_t>(kHeader + size));
    u[6] = u[7] = 0;
    uint16_t sum = checksum_fold(checksum_add(
        pseudo_header_sum(source, destination, kProtoUdp, static_cast<uint16_t>(kHeader + size)), u, kHeader + size));
    if (sum == 0) sum = 0xffff;  // 0 means "no checksum" in UDP
    memcpy(u + 6, &sum, 2);
    output_ipv4(p, source, destination, kProtoUdp);
    return static_cast<int64_t>(size);
}

void receive_udp(Packet* p, const Ipv4Info& ip) {
    counters().udp_received++;
    const uint8_t* u = p->data();
    const uint16_t length = p->length >= kHeader ? load16(u + 4) : 0;
    auto drop = [p] {
        counters().udp_dropped++;
        free_packet(p);
    };
    if (length < kHeader || length > p->length) return drop();
    uint16_t stored;
    memcpy(&stored, u + 6, 2);
    if (stored != 0 && !p->checksum_verified &&
        checksum_fold(checksum_add(pseudo_header_sum(ip.source, ip.destination, kProtoUdp, length), u, length)) != 0)
        return drop();
    Endpoint* e = find(ip.destination, load16(u + 2));
    if (e == nullptr || (e->remote_ip != 0 && (e->remote_ip != ip.source || e->remote_port != load16(u))))
        return drop();
    if (e->queued_bytes + length > kMaxQueued) return drop();
    p->source_ip = ip.source;
    p->source_port = load16(u);
    p->length = length;
    p->pull(kHeader);
    e->queued_bytes += p->length;
    e->queue.push_back(*p);
    sched::wake(e->waiters);
    if (e->socket) fs::notify_readiness_changed(*e->socket);
}

}  // namespace kiln::net::udp
