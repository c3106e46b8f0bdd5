// A tap device: the host end of a guest's network card. Frames carry a virtio_net_hdr in front
// (IFF_VNET_HDR), so checksum offload and TSO pass between guest and host kernel untouched.
#pragma once

#include <cstdint>
#include <string>

#include "host/unique_fd.h"

namespace kiln::vmm {

class Tap {
  public:
    // Attaches to the existing tap interface `name` (created by the host networking library or
    // `ip tuntap add`). Throws VmmError naming the tap on failure.
    static Tap open(const std::string& name);
    // An open descriptor that carries one frame, virtio_net_hdr first, per read and write as a
    // tap's does (a SOCK_SEQPACKET socket): the device model's tests and fuzz target, without a
    // host interface. Offloads are a tap's setting, so set_offload does nothing for it.
    static Tap adopt(UniqueFd fd, std::string name);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    // TUN_F_* flags: which offloaded packets the guest accepts (TUNSETOFFLOAD).
    void set_offload(unsigned flags);
    // Waits (at most `timeout_ms`) until the host has taken the carrier that attaching raised
    // (IFF_RUNNING, set by the host's link watcher, which also tells a bridge the port is up):
    // a frame sent before that, such as a restored guest's announcement, a bridge drops.
    // False if the time ran out.
    bool wait_until_running(int timeout_ms) const;

  private:
    UniqueFd fd_;
    std::string name_;
    bool is_tap_ = true;
};

}  // namespace kiln::vmm
