// ARP (RFC 826): answers for our address, a small cache, and packets held while a neighbour's
// MAC is resolved.
#pragma once

#include <stdint.h>

#include "net/packet.h"

namespace kiln::net {

void receive_arp(Packet* packet);
// Looks `address` up in the cache; false if unknown (a request is not sent by this call).
bool resolve(uint32_t address, uint8_t mac[6]);
// Keeps `packet` until `address` resolves (sending a request); drops the oldest if too many wait.
void hold_for_arp(Packet* packet, uint32_t address);
// Re-sends requests for unresolved addresses and drops packets that waited too long. Net thread.
void arp_tick(uint64_t now_ns);
// Packets wait for an answer, or announcements are left: arp_tick is due every 100 ms.
bool arp_waiting();
// Tells the segment our address is ours (gratuitous ARP), e.g. after boot or restore.
void announce();
// Announces again at each of the next `times` ARP ticks (100 ms apart), as QEMU's self-announce
// does after a migration: a frame sent before the host's bridge forwards from a tap whose carrier
// just came up is lost, and so, with it, the host's only news of the move.
void announce_again(unsigned times);

void send_ethernet(Packet* packet, const uint8_t* destination_mac, uint16_t type);
void loop_back(Packet* packet);

}  // namespace kiln::net
