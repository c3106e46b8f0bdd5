#include "net/interface.h"

#include "lib/string.h"
#include "net/arp.h"
#include "net/bytes.h"
#include "net/ipv4.h"

namespace kiln::net {
namespace {

constinit NetDevice* the_device = nullptr;
constinit Ipv4Config the_config;

constexpr uint16_t kEtherTypeIpv4 = 0x0800, kEtherTypeArp = 0x0806;
constexpr size_t kEthernetHeader = 14;

uint32_t next_hop_for(uint32_t destination) {
    const Ipv4Config& c = the_config;
    if ((destination & c.netmask) == (c.address & c.netmask) || c.gateway == 0) return destination;
    return c.gateway;
}

}  // namespace

void attach_device(NetDevice* device) { the_device = device; }
NetDevice* device() { return the_device; }
const Ipv4Config& config() { return the_config; }
void set_config(const Ipv4Config& config) { the_config = config; }

bool is_local_address(uint32_t address) { return address == the_config.address || (address >> 24) == 127; }

void deliver_frame(Packet* frame) {
    if (frame->length < kEthernetHeader) {
        free_packet(frame);
        return;
    }
    const uint8_t* eth = frame->data();
    const uint16_t type = load16(eth + 12);
    frame->pull(kEthernetHeader);
    if (type == kEtherTypeIpv4) {
        receive_ipv4(frame);
    } else if (type == kEtherTypeArp) {
        receive_arp(frame);
    } else {
        free_packet(frame);
    }
}

void send_ethernet(Packet* packet, const uint8_t* destination_mac, uint16_t type) {
    if (the_device == nullptr || packet->headroom() < kEthernetHeader) {
        free_packet(packet);
        return;
    }
    uint8_t* eth = packet->push(kEthernetHeader);
    memcpy(eth, destination_mac, 6);
    memcpy(eth + 6, the_device->mac(), 6);
    store16(eth + 12, type);
    if (packet->needs_checksum)
        packet->checksum_start = static_cast<uint16_t>(packet->checksum_start + kEthernetHeader);
    the_device->transmit(packet);
}

void send_ipv4(Packet* packet, uint32_t destination) {
    if (is_local_address(destination)) {
        // Loopback: back up the stack, as if it had arrived.
        packet->checksum_verified = true;
        packet->needs_checksum = false;
        packet->segment_size = 0;
        loop_back(packet);
        return;
    }
    uint8_t mac[6];
    const uint32_t hop = next_hop_for(destination);
    if (!resolve(hop, mac)) {
        hold_for_arp(packet, hop);  // sent once the reply comes, dropped if none does
        return;
    }
    send_ethernet(packet, mac, kEtherTypeIpv4);
}

void format_ip(uint32_t a, char out[16]) {
    size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        const uint32_t b = (a >> shift) & 0xff;
        if (b >= 100) out[n++] = static_cast<char>('0' + b / 100);
        if (b >= 10) out[n++] = static_cast<char>('0' + b / 10 % 10);
        out[n++] = static_cast<char>('0' + b % 10);
        if (shift) out[n++] = '.';
    }
    out[n] = '\0';
}

bool parse_ip(const char* text, size_t length, uint32_t& out) {
    uint32_t value = 0, part = 0;
    int parts = 0, digits = 0;
    for (size_t i = 0; i <= length; ++i) {
        if (i == length || text[i] == '.') {
            if (digits == 0 || part > 255 || ++parts > 4) return false;
            value = (value << 8) | part;
            part = 0;
            digits = 0;
            continue;
        }
        if (text[i] < '0' || text[i] > '9' || ++digits > 3) return false;
        part = part * 10 + static_cast<uint32_t>(text[i] - '0');
    }
    if (parts != 4) return false;
    out = value;
    return true;
}

}  // namespace kiln::net
