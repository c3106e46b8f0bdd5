// The network stack's thread and configuration. Received frames, loopback packets and protocol
// timers are all handled on one kernel thread ("run to completion"); applications' system calls
// send directly. One vCPU and a kernel that is not preemptible make the two exclusive without
// locks.
#pragma once

#include <stdint.h>

#include "lib/cmdline.h"
#include "net/packet.h"

namespace kiln::net {

// Reads kiln.ip=, kiln.gw=, kiln.dns= and brings up the virtio-net device named on the command
// line, if any. Returns false (having said why) on a malformed setting.
bool init(const Cmdline& cmdline);
bool enabled();

// From the device's interrupt handler: frames arrived.
void wake_from_interrupt();
// A protocol timer is due at `deadline_ns`: the network thread wakes by then.
void schedule_timer(uint64_t deadline_ns);
// A packet for this host, handed back up the stack by the network thread.
void queue_loopback(Packet* packet);

}  // namespace kiln::net
