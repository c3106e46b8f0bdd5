// One proxied TCP connection: bytes move client -> upstream and upstream -> client. Each
// direction is a small state machine: move what the source has to the destination, and when the
// source ends and nothing is left in flight, shut the destination's write side (half-close passes
// through).
//
// How the bytes move depends on how many there are, as in HAProxy: small messages (requests,
// most responses) are copied through a buffer, since a recv and a send cost less than two
// splices; a direction whose read fills the whole buffer is a bulk transfer and moves to a pipe
// with splice(2), so that its bytes no longer enter user space.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "host/unique_fd.h"

namespace kiln::balancer {

// A pipe that holds `pending` bytes in flight from one socket to the other.
class SplicePipe {
  public:
    // Null when out of descriptors: the direction goes on copying.
    static std::unique_ptr<SplicePipe> open();
    // Moves what it can: source -> pipe -> destination. Returns false on a hard error of either
    // socket (reset, refused...). Sets `source_ended` when the source sent its FIN.
    bool pump(int source, int destination, bool& source_ended);
    size_t pending() const { return pending_; }

  private:
    SplicePipe(int read, int write) : read_(read), write_(write) {}
    UniqueFd read_, write_;
    size_t pending_ = 0;
};

// One direction: copies while its messages are small, splices once one fills a buffer.
class Pump {
  public:
    // Same contract as SplicePipe::pump.
    bool pump(int source, int destination, bool& source_ended);
    size_t pending() const { return leftover_.size() + (pipe_ ? pipe_->pending() : 0); }
    bool splicing() const { return pipe_ != nullptr; }

  private:
    bool copy(int source, int destination, bool& source_ended);
    bool flush_leftover(int destination);
    std::string leftover_;  // copied from the source, not yet taken by the destination
    std::unique_ptr<SplicePipe> pipe_;
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
    // Whether the client -> upstream / upstream -> client direction has moved to splice(2).
    bool splicing_up() const { return up_.pump.splicing(); }
    bool splicing_down() const { return down_.pump.splicing(); }

  private:
    struct Direction {
        Pump pump;
        bool source_ended = false;
        bool shut = false;
    };
    bool pump(Direction& d, int source, int destination);

    int client_, upstream_;
    Direction up_, down_;  // client -> upstream, upstream -> client
};

}  // namespace kiln::balancer
