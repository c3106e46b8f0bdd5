#include "net/packet.h"

#include "lib/utility.h"
#include "mm/heap.h"

namespace kiln::net {

Packet* allocate_packet(size_t payload, size_t headroom) {
    // The Packet and its bytes in one heap block: 2 KiB for a full-size frame.
    const size_t bytes = sizeof(Packet) + headroom + payload;
    auto* raw = static_cast<uint8_t*>(heap::allocate(bytes));
    if (raw == nullptr) return nullptr;
    auto* p = new (raw) Packet{};
    p->buffer = raw + sizeof(Packet);
    p->capacity = headroom + payload;
    p->head = headroom;
    p->length = 0;
    return p;
}

void free_packet(Packet* packet) {
    if (packet == nullptr) return;
    packet->~Packet();
    heap::free(packet);
}

}  // namespace kiln::net
