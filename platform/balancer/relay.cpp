#include "balancer/relay.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

#include "netns/error.h"

namespace kiln::balancer {

namespace {
constexpr size_t kChunk = 1 << 16;  // a pipe's default capacity
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;
}  // namespace

SplicePipe::SplicePipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw netns::system_error("balancer: pipe2");
    read_.reset(fds[0]);
    write_.reset(fds[1]);
}

bool SplicePipe::pump(int source, int destination, bool& source_ended) {
    // Bounded: one busy connection must not starve the others of the event loop.
    bool source_drained = false;
    for (int round = 0; round < 8; ++round) {
        bool progress = false;
        if (pending_ > 0) {
            const ssize_t n = ::splice(read_.get(), nullptr, destination, nullptr, pending_, kSpliceFlags);
            if (n > 0) {
                pending_ -= static_cast<size_t>(n);
                progress = true;
            } else if (n < 0 && errno != EAGAIN) {
                return false;
            }
        }
        if (source_drained) break;  // and its bytes passed on: epoll says when there are more
        if (pending_ == 0 && !source_ended) {
            const ssize_t n = ::splice(source, nullptr, write_.get(), nullptr, kChunk, kSpliceFlags);
            if (n > 0) {
                pending_ += static_cast<size_t>(n);
                progress = true;
                // Less than asked for: the socket had no more. Asking again would only get
                // EAGAIN, a system call per message for nothing (epoll is level-triggered).
                source_drained = static_cast<size_t>(n) < kChunk;
            } else if (n == 0) {
                source_ended = true;
            } else if (errno != EAGAIN) {
                return false;
            }
        }
        if (!progress) break;
    }
    return true;
}

bool Relay::pump(Direction& d, int source, int destination) {
    if (!d.pipe.pump(source, destination, d.source_ended)) return false;
    if (d.source_ended && d.pipe.pending() == 0 && !d.shut) {
        ::shutdown(destination, SHUT_WR);
        d.shut = true;
    }
    return true;
}

bool Relay::pump(Ready ready) {
    if (ready.up && !pump(up_, client_, upstream_)) return false;
    if (ready.down && !pump(down_, upstream_, client_)) return false;
    return !(up_.shut && down_.shut);
}

Interest Relay::interest() const {
    Interest i;
    if (!up_.source_ended && up_.pipe.pending() == 0) i.client |= EPOLLIN;
    if (up_.pipe.pending() > 0) i.upstream |= EPOLLOUT;
    if (!down_.source_ended && down_.pipe.pending() == 0) i.upstream |= EPOLLIN;
    if (down_.pipe.pending() > 0) i.client |= EPOLLOUT;
    return i;
}

}  // namespace kiln::balancer
