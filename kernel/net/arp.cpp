#include "net/arp.h"

#include "lib/string.h"
#include "net/bytes.h"
#include "net/interface.h"
#include "net/stack.h"
#include "time/clock.h"

namespace kiln::net {
namespace {

constexpr size_t kCacheSize = 64;
constexpr size_t kMaxHeld = 64;
constexpr uint64_t kRetryNs = 200'000'000;
constexpr uint64_t kGiveUpNs = 3'000'000'000;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kRequest = 1, kReply = 2;
const uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct Entry {
    uint32_t address;
    uint8_t mac[6];
    bool valid;
};

struct Held {
    ListNode link;
    Packet* packet;
    uint32_t address;
    uint64_t since_ns;
    uint64_t last_request_ns;
};

constinit Entry cache[kCacheSize] = {};
constinit size_t next_slot = 0;

IntrusiveList<Held, &Held::link>& held() {
    static IntrusiveList<Held, &Held::link> list;
    return list;
}
constinit size_t held_count = 0;

void learn(uint32_t address, const uint8_t* mac) {
    for (Entry& e : cache) {
        if (e.valid && e.address == address) {
            memcpy(e.mac, mac, 6);
            return;
        }
    }
    Entry& e = cache[next_slot++ % kCacheSize];
    e = {address, {}, true};
    memcpy(e.mac, mac, 6);
}

void send_arp(uint16_t operation, uint32_t target, const uint8_t* target_mac) {
    NetDevice* dev = device();
    if (dev == nullptr) return;
    Packet* p = allocate_packet(28);
    if (p == nullptr) return;
    uint8_t* a = p->put(28);
    store16(a, 1);           // Ethernet
    store16(a + 2, 0x0800);  // IPv4
    a[4] = 6;
    a[5] = 4;
    store16(a + 6, operation);
    memcpy(a + 8, dev->mac(), 6);
    store32(a + 14, config().address);
    memcpy(a + 18, target_mac ? target_mac : kBroadcast, 6);
    store32(a + 24, target);
    send_ethernet(p, target_mac ? target_mac : kBroadcast, kEtherTypeArp);
}

void release_held(uint32_t address, const uint8_t* mac) {
    held().for_each([&](Held& h) {
        if (h.address != address) return;
        IntrusiveList<Held, &Held::link>::remove(h);
        --held_count;
        send_ethernet(h.packet, mac, 0x0800);
        delete &h;
    });
}

}  // namespace

void receive_arp(Packet* packet) {
    const uint8_t* a = packet->data();
    if (packet->length < 28 || load16(a) != 1 || load16(a + 2) != 0x0800 || a[4] != 6 || a[5] != 4) {
        free_packet(packet);
        return;
    }
    const uint16_t operation = load16(a + 6);
    const uint32_t sender = load32(a + 14), target = load32(a + 24);
    uint8_t sender_mac[6];
    memcpy(sender_mac, a + 8, 6);
    free_packet(packet);
    if (sender == 0) return;  // probes
    if (target == config().address || operation == kReply) {
        learn(sender, sender_mac);
        release_held(sender, sender_mac);
    }
    if (operation == kRequest && target == config().address) send_arp(kReply, sender, sender_mac);
}

bool resolve(uint32_t address, uint8_t mac[6]) {
    if (address == 0xffffffff) {
        memcpy(mac, kBroadcast, 6);
        return true;
    }
    for (const Entry& e : cache) {
        if (e.valid && e.address == address) {
            memcpy(mac, e.mac, 6);
            return true;
        }
    }
    return false;
}

void hold_for_arp(Packet* packet, uint32_t address) {
    if (held_count >= kMaxHeld) {
        Held* oldest = held().pop_front();
        free_packet(oldest->packet);
        delete oldest;
        --held_count;
    }
    const uint64_t now = time::now_ns();
    bool asked = false;
    held().for_each([&](Held& h) { asked |= h.address == address; });
    auto* h = new Held{{}, packet, address, now, now};
    held().push_back(*h);
    ++held_count;
    if (!asked) send_arp(kRequest, address, nullptr);
    schedule_timer(now);  // the network thread ticks ARP while anything waits
}

namespace {
constinit unsigned announcements_left = 0;
}

bool arp_waiting() { return held_count > 0 || announcements_left > 0; }

void arp_tick(uint64_t now_ns) {
    if (announcements_left > 0) {
        --announcements_left;
        announce();
    }
    held().for_each([&](Held& h) {
        if (now_ns - h.since_ns > kGiveUpNs) {
            IntrusiveList<Held, &Held::link>::remove(h);
            --held_count;
            free_packet(h.packet);
            delete &h;
        } else if (now_ns - h.last_request_ns > kRetryNs) {
            h.last_request_ns = now_ns;
            send_arp(kRequest, h.address, nullptr);
        }
    });
}

void announce() {
    if (config().address != 0) send_arp(kRequest, config().address, nullptr);
}

void announce_again(unsigned times) {
    announcements_left = times;
    schedule_timer(time::now_ns());
}

}  // namespace kiln::net
