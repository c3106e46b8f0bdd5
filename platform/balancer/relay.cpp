#include "balancer/relay.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace kiln::balancer {

namespace {
constexpr size_t kChunk = 1 << 16;      // a pipe's default capacity
constexpr size_t kCopyChunk = 1 << 14;  // a read this full makes a direction a bulk transfer
constexpr unsigned kSpliceFlags = SPLICE_F_NONBLOCK | SPLICE_F_MOVE;

bool would_block(ssize_t n) { return n < 0 && (errno == EAGAIN || errno == EINTR); }
}  // namespace

std::unique_ptr<SplicePipe> SplicePipe::open() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
    return std::unique_ptr<SplicePipe>(new SplicePipe(fds[0], fds[1]));
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

bool Pump::flush_leftover(int destination) {
    const ssize_t n = ::send(destination, leftover_.data(), leftover_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) leftover_.erase(0, static_cast<size_t>(n));
    return n >= 0 || would_block(n);
}

bool Pump::copy(int source, int destination, bool& source_ended) {
    // One buffer for every connection: what a send leaves over is kept per direction.
    static thread_local char buffer[kCopyChunk];
    const ssize_t n = ::recv(source, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) source_ended = true;
    if (n <= 0) return n == 0 || would_block(n);
    const auto got = static_cast<size_t>(n);
    ssize_t sent = ::send(destination, buffer, got, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && !would_block(sent)) return false;
    if (sent < 0) sent = 0;
    if (static_cast<size_t>(sent) < got) leftover_.assign(buffer + sent, got - static_cast<size_t>(sent));
    if (got == sizeof(buffer)) pipe_ = SplicePipe::open();  // a bulk transfer: no more copies
    return true;
}

bool Pump::pump(int source, int destination, bool& source_ended) {
    if (!leftover_.empty()) {
        if (!flush_leftover(destination)) return false;
        if (!leftover_.empty()) return true;  // epoll says when the destination takes more
    }
    if (!pipe_) {
        if (source_ended) return true;
        if (!copy(source, destination, source_ended)) return false;
        if (!pipe_ || !leftover_.empty()) return true;
        // That read filled the buffer: the rest of the transfer goes through the new pipe.
    }
    return pipe_->pump(source, destination, source_ended);
}

bool Relay::pump(Direction& d, int source, int destination) {
    if (!d.pump.pump(source, destination, d.source_ended)) return false;
    if (d.source_ended && d.pump.pending() == 0 && !d.shut) {
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
    if (!up_.source_ended && up_.pump.pending() == 0) i.client |= EPOLLIN;
    if (up_.pump.pending() > 0) i.upstream |= EPOLLOUT;
    if (!down_.source_ended && down_.pump.pending() == 0) i.upstream |= EPOLLIN;
    if (down_.pump.pending() > 0) i.client |= EPOLLOUT;
    return i;
}

}  // namespace kiln::balancer
