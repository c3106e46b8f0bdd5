// The guest's network interface: its device, its addresses, and the receive and transmit paths
// through Ethernet, ARP and IPv4 (one interface, static configuration from the command line:
// kiln.ip=10.0.0.5/24 kiln.gw=10.0.0.1 kiln.dns=10.0.0.1).
#pragma once

#include <stdint.h>

#include "net/packet.h"

namespace kiln::net {

using Mac = uint8_t[6];

// What a network driver offers the stack.
class NetDevice {
  public:
    virtual const uint8_t* mac() const = 0;
    // Takes the packet (an Ethernet frame at data()); frees it whatever happens.
    virtual void transmit(Packet* packet) = 0;
    // The device computes TCP/UDP checksums on transmit (needs_checksum) / segments TSO packets.
    virtual bool checksum_offload() const = 0;
    virtual bool segmentation_offload() const = 0;
    // Moves received frames into the stack (deliver_frame) and refills buffers. Net thread.
    virtual void poll() = 0;
    // Every received frame raises an interrupt, so the network thread may sleep until one does.
    // Otherwise it also polls the device every 100 ms (the ARP tick's). The virtio-net card
    // under QEMU answered nothing without that poll (found when the tick stopped running on
    // idle instances); until that is understood, only the proc backend's tap says yes.
    virtual bool interrupts_every_frame() const { return false; }

  protected:
    ~NetDevice() = default;
};

struct Ipv4Config {
    uint32_t address = 0;  // host byte order
    uint32_t netmask = 0;
    uint32_t gateway = 0;
    uint32_t dns = 0;
};

void attach_device(NetDevice* device);
NetDevice* device();
const Ipv4Config& config();
void set_config(const Ipv4Config& config);

// Receive path entry: an Ethernet frame from the device. Takes ownership.
void deliver_frame(Packet* frame);

// Sends an IPv4 packet (IP header already at data()) to `next_hop_for(destination)`, resolving
// the MAC with ARP. Takes ownership.
void send_ipv4(Packet* packet, uint32_t destination);

bool is_local_address(uint32_t address);

// "10.0.0.5" style, for messages and /etc/resolv.conf.
void format_ip(uint32_t address, char out[16]);
bool parse_ip(const char* text, size_t length, uint32_t& out);

}  // namespace kiln::net
