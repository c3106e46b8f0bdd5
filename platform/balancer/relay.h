// One proxied TCP connection: bytes move client -> upstream and upstream -> client through a
// pipe each way with splice(2), so they never enter user space. Each direction is a small state
// machine: fill the pipe from its source, drain it into its destination, and when the source
// ends and the pipe is empty, shut the destination's write side (half-close passes through).
#pragma once

#include <cstddef>
#include <cstdint>

#include "host/unique_fd.h"

namespace kiln::balancer {

// A pipe that holds `pending` bytes in flight from one socket to the other.
class SplicePipe {
  public:
    SplicePipe();  // throws NetnsError when out of descriptors
    // Moves what it can: source -> pipe -> destination. Returns false on a hard error of either
    // socket (reset, refused...). Sets `source_ended` when the source sent its FIN.
    bool pump(int source, int destination, bool& source_ended);
    size_t pending() const { return pending_; }

  private:
    UniqueFd read_, write_;
    size_t pending_ = 0;
};

// The events a relaying connection wants on each socket, given its pipes.
struct Interest {
    uint32_t client = 0, upstream = 0;
};

class Relay {
  public:
    Relay(int client, int upstream) : client_(client), upstream_(upstream) {}
    // Which directions an event may let move: a readable client or writable upstream moves
    // `up`, the reverse `down`. Pumping the other too would cost a system call that finds nothing.
    struct Ready {
        bool up, down;
    };
    // Moves bytes in the `ready` directions. Returns false when the connection is over (both
    // directions ended, or an error): the caller closes both sockets.
    bool pump(Ready ready = {true, true});
    Interest interest() const;

  private:
    struct Direction {
        SplicePipe pipe;
        bool source_ended = false;
        bool shut = false;
    };
    bool pump(Direction& d, int source, int destination);

    int client_, upstream_;
    Direction up_, down_;  // client -> upstream, upstream -> client
};

}  // namespace kiln::balancer
