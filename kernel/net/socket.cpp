#include "net/socket.h"

#include "core/boot_env.h"
#include "core/errno.h"
#include "drivers/hostcall.h"
#include "fs/pipe.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "net/interface.h"

namespace kiln::net {
namespace {

constexpr int kSolSocket = 1, kIpprotoTcp = 6, kIpprotoIp = 0;
constexpr int kSoType = 3, kSoError = 4, kSoReuseAddr = 2, kSoKeepAlive = 9, kSoSndBuf = 7, kSoRcvBuf = 8,
              kSoReusePort = 15, kSoLinger = 13, kSoBroadcast = 6, kSoRcvTimeo = 20, kSoSndTimeo = 21,
              kSoAcceptConn = 30;
constexpr int kTcpNoDelay = 1, kTcpMaxSeg = 2;

// Waits on `queue` until `ready()`; -EAGAIN for a non-blocking call, a restart on a signal.
template <typename Ready>
int64_t block_until(sched::WaitQueue& queue, bool nonblocking, Ready ready) {
    while (!ready()) {
        if (nonblocking) return -EAGAIN;
        if (sched::wait(queue, 0, true) == sched::WakeReason::kInterrupted) return linux::kErestartsys;
    }
    return 0;
}

// The first listen() of the application tells kiln-vmm it is ready (ARCHITECTURE.md §3).
void announce_ready(uint16_t port) {
    static bool announced = false;
    if (announced || !boot_env().under_kiln_vmm) return;
    announced = true;
    hostcall::ready(6, port);
}

class TcpSocket final : public Socket {
  public:
    explicit TcpSocket(uint32_t flags) : Socket(flags) {}
    ~TcpSocket() override {
        if (connection_) tcp::close(*connection_);
    }
    explicit TcpSocket(RefPtr<tcp::Connection> accepted, uint32_t flags) : Socket(flags), connection_(move(accepted)) {
        connection_->socket = this;
        bound_ = {connection_->local_ip, connection_->local_port};
    }

    int type() const override { return 1; }

    int64_t bind(const SocketAddress& a) override {
        if (connection_ || bound_.port != 0) return -EINVAL;
        if (a.ip != 0 && !is_local_address(a.ip)) return -EADDRNOTAVAIL;
        uint16_t port = a.port;
        if (port == 0)
            port = tcp::ephemeral_port();
        else if (!reuse_address_ && tcp::port_in_use(a.ip, port))
            return -EADDRINUSE;
        if (port == 0) return -EADDRINUSE;
        bound_ = {a.ip, port};
        return 0;
    }

    int64_t listen(int backlog) override {
        if (connection_ && connection_->state == tcp::State::kListen) {
            connection_->backlog = max(min(backlog, 4096), 1);
            return 0;
        }
        if (connection_) return -EINVAL;
        if (bound_.port == 0)
            if (int64_t r = bind({0, 0}); r < 0) return r;
        int64_t r = tcp::listen(bound_.ip, bound_.port, min(max(backlog, 1), 4096), reuse_address_, connection_);
        if (r < 0) return r;
        connection_->socket = this;
        connection_->no_delay = no_delay_;
        announce_ready(bound_.port);
        return 0;
    }

    int64_t accept(RefPtr<fs::File>& out, SocketAddress& peer, uint32_t flags) override {
        if (!connection_ || connection_->state != tcp::State::kListen) return -EINVAL;
        tcp::Connection& l = *connection_;
        if (int64_t r = block_until(l.waiters, nonblocking(), [&l] { return !l.accept_queue.empty(); }); r < 0)
            return r;
        RefPtr<tcp::Connection> c = l.accept_queue[0];
        l.accept_queue.erase(0);
        peer = {c->remote_ip, c->remote_port};
        out = RefPtr<fs::File>(new TcpSocket(c, flags & fs::kOpenNonBlock));
        return 0;
    }

    int64_t connect(const SocketAddress& a) override {
        if (connection_) {
            // A second connect on a non-blocking socket: report how the first one went.
            if (connection_->state == tcp::State::kSynSent) return -EALREADY;
            if (connection_->state == tcp::State::kListen) return -EINVAL;
            if (connection_->error) return -exchange(connection_->error, 0);
            return -EISCONN;
        }
        if (a.port == 0) return -ECONNREFUSED;
        uint32_t local = bound_.ip != 0 ? bound_.ip : (is_local_address(a.ip) ? a.ip : config().address);
        if (local == 0) return -ENETUNREACH;
        uint16_t port = bound_.port != 0 ? bound_.port : tcp::ephemeral_port();
        if (port == 0) return -EADDRNOTAVAIL;
        bound_ = {local, port};
        if (int64_t r = tcp::connect(local, port, a.ip, a.port, connection_); r < 0) return r;
        connection_->socket = this;
        connection_->no_delay = no_delay_;
        if (nonblocking()) return -EINPROGRESS;
        tcp::Connection& c = *connection_;
        if (int64_t r = block_until(c.waiters, false, [&c] { return c.state != tcp::State::kSynSent; }); r < 0)
            return r == linux::kErestartsys ? -EINTR : r;
        if (c.state == tcp::State::kClosed || c.error) return -(c.error ? exchange(c.error, 0) : ECONNREFUSED);
        return 0;
    }

    int64_t local_address(SocketAddress& out) override {
        out = bound_;
        return 0;
    }

    int64_t peer_address(SocketAddress& out) override {
        if (!connection_ || connection_->state == tcp::State::kListen || connection_->state == tcp::State::kSynSent ||
            connection_->state == tcp::State::kClosed)
            return -ENOTCONN;
        out = {connection_->remote_ip, connection_->remote_port};
        return 0;
    }

    int64_t shutdown(int how) override {
        if (!connection_ || connection_->state == tcp::State::kListen) return -ENOTCONN;
        if (how == 1 || how == 2) tcp::shutdown_send(*connection_);
        if (how == 0 || how == 2) reads_shut_ = true;
        fs::notify_readiness_changed(*this);
        return 0;
    }

    int64_t send_to(const fs::IoBuffer& data, size_t size, int flags, const SocketAddress*) override {
        if (!connection_ || connection_->state == tcp::State::kListen) return -ENOTCONN;
        tcp::Connection& c = *connection_;
        if (c.state == tcp::State::kSynSent) {
            const bool nb = nonblocking() || (flags & kMsgDontWait);
            if (int64_t r = block_until(c.waiters, nb, [&c] { return c.state != tcp::State::kSynSent; }); r < 0)
                return r;
        }
        size_t done = 0;
        while (done < size) {
            if (c.error || !c.can_send() || c.fin_queued) {
                if (done > 0) break;
                if (c.error) return -exchange(c.error, 0);
                if (!(flags & kMsgNoSignal)) linux::send_signal(*linux::current_info(), linux::kSigPipe);
                return -EPIPE;
            }
            const int64_t n = tcp::send(c, data.advanced(done), size - done);
            if (n < 0) return done > 0 ? static_cast<int64_t>(done) : n;
            done += static_cast<size_t>(n);
            if (done == size) break;
            const bool nb = nonblocking() || (flags & kMsgDontWait);
            int64_t r =
                block_until(c.waiters, nb, [&c] { return c.send_buffer.space() > 0 || c.error || !c.can_send(); });
            if (r < 0) return done > 0 ? static_cast<int64_t>(done) : r;
        }
        return static_cast<int64_t>(done);
    }

    int64_t receive_from(const fs::IoBuffer& data, size_t size, int flags, SocketAddress* from) override {
        if (!connection_ || connection_->state == tcp::State::kListen) return -ENOTCONN;
        tcp::Connection& c = *connection_;
        if (size == 0) return 0;
        const bool nb = nonblocking() || (flags & kMsgDontWait);
        size_t done = 0;
        for (;;) {
            if (c.readable() > 0) {
                const int64_t n = tcp::receive(c, data.advanced(done), size - done, flags & kMsgPeek);
                if (n < 0) return done > 0 ? static_cast<int64_t>(done) : n;
                done += static_cast<size_t>(n);
                if (done == size || !(flags & kMsgWaitAll) || (flags & kMsgPeek)) break;
                continue;
            }
            if (done > 0 && !(flags & kMsgWaitAll)) break;
            if (c.error) return done > 0 ? static_cast<int64_t>(done) : -exchange(c.error, 0);
            if (c.fin_received || reads_shut_ || c.state == tcp::State::kClosed) break;  // end of stream
            int64_t r = block_until(c.waiters, nb, [&c, this] {
                return c.readable() > 0 || c.fin_received || c.error || reads_shut_ || c.state == tcp::State::kClosed;
            });
            if (r < 0) return done > 0 ? static_cast<int64_t>(done) : r;
        }
        if (from) *from = {c.remote_ip, c.remote_port};
        fs::notify_readiness_changed(*this);
        return static_cast<int64_t>(done);
    }

    uint32_t poll() override {
        if (!connection_) return fs::kPollOut | fs::kPollHup;
        uint32_t events = tcp::poll_events(*connection_);
        if (reads_shut_) events |= fs::kPollIn;
        return events;
    }

    sched::WaitQueue* wait_queue() override { return connection_ ? &connection_->waiters : nullptr; }

    int64_t set_option(int level, int name, const uint8_t* value, size_t length) override {
        int v = 0;
        if (length >= 4) memcpy(&v, value, 4);
        if (level == kIpprotoTcp && name == kTcpNoDelay) {
            no_delay_ = v != 0;
            if (connection_) connection_->no_delay = no_delay_;
            return 0;
        }
        if (level == kSolSocket && name == kSoKeepAlive) {
            if (connection_) connection_->keep_alive = v != 0;
            return 0;
        }
        return Socket::set_option(level, name, value, length);
    }

    int64_t get_option(int level, int name, uint8_t* value, size_t& length) override {
        int v;
        if (level == kSolSocket && name == kSoError) {
            v = connection_ ? exchange(connection_->error, 0) : 0;
        } else if (level == kIpprotoTcp && name == kTcpNoDelay) {
            v = no_delay_;
        } else if (level == kIpprotoTcp && name == kTcpMaxSeg) {
            v = connection_ ? connection_->mss : 536;
        } else if (level == kSolSocket && name == kSoAcceptConn) {
            v = connection_ && connection_->state == tcp::State::kListen;
        } else {
            return Socket::get_option(level, name, value, length);
        }
        length = min<size_t>(length, 4);
        memcpy(value, &v, length);
        return 0;
    }

  private:
    RefPtr<tcp::Connection> connection_;
    SocketAddress bound_;
    bool no_delay_ = false;
    bool reads_shut_ = false;
};

class UdpSocket final : public Socket {
  public:
    explicit UdpSocket(uint32_t flags) : Socket(flags), endpoint_(new udp::Endpoint) { endpoint_->socket = this; }
    ~UdpSocket() override { endpoint_->socket = nullptr; }

    int type() const override { return 2; }

    int64_t bind(const SocketAddress& a) override {
        if (a.ip != 0 && !is_local_address(a.ip)) return -EADDRNOTAVAIL;
        return udp::bind(*endpoint_, a.ip, a.port);
    }
    int64_t listen(int) override { return -EOPNOTSUPP; }
    int64_t accept(RefPtr<fs::File>&, SocketAddress&, uint32_t) override { return -EOPNOTSUPP; }

    int64_t connect(const SocketAddress& a) override {
        endpoint_->remote_ip = a.ip;
        endpoint_->remote_port = a.port;
        if (endpoint_->local_port == 0)
            if (int64_t r = udp::bind(*endpoint_, 0, 0); r < 0) return r;
        return 0;
    }

    int64_t local_address(SocketAddress& out) override {
        out = {endpoint_->local_ip, endpoint_->local_port};
        if (out.ip == 0 && endpoint_->remote_ip != 0)
            out.ip = is_local_address(endpoint_->remote_ip) ? endpoint_->remote_ip : config().address;
        return 0;
    }

    int64_t peer_address(SocketAddress& out) override {
        if (endpoint_->remote_ip == 0) return -ENOTCONN;
        out = {endpoint_->remote_ip, endpoint_->remote_port};
        return 0;
    }

    int64_t shutdown(int) override { return endpoint_->remote_ip ? 0 : -ENOTCONN; }

    int64_t send_to(const fs::IoBuffer& data, size_t size, int, const SocketAddress* to) override {
        SocketAddress target = to ? *to : SocketAddress{endpoint_->remote_ip, endpoint_->remote_port};
        if (target.ip == 0 && !to) return -EDESTADDRREQ;
        return udp::send(*endpoint_, target.ip, target.port, data, size);
    }

    int64_t receive_from(const fs::IoBuffer& data, size_t size, int flags, SocketAddress* from) override {
        udp::Endpoint& e = *endpoint_;
        const bool nb = nonblocking() || (flags & kMsgDontWait);
        if (int64_t r = block_until(e.waiters, nb, [&e] { return !e.queue.empty(); }); r < 0) return r;
        Packet* p = e.queue.front();
        const size_t n = min(size, p->length);
        if (n && data.copy_out(0, p->data(), n) != 0) return -EFAULT;
        if (from) *from = {p->source_ip, p->source_port};
        if (!(flags & kMsgPeek)) {
            e.queue.pop_front();
            e.queued_bytes -= p->length;
            free_packet(p);
        }
        return static_cast<int64_t>(n);  // the rest of a longer datagram is discarded, as in Linux
    }

    uint32_t poll() override { return (endpoint_->queue.empty() ? 0 : fs::kPollIn) | fs::kPollOut; }
    sched::WaitQueue* wait_queue() override { return &endpoint_->waiters; }

  private:
    RefPtr<udp::Endpoint> endpoint_;
};

}  // namespace

int64_t Socket::set_option(int level, int name, const uint8_t* value, size_t length) {
    int v = 0;
    if (length >= 4) memcpy(&v, value, 4);
    if (level == kSolSocket) {
        switch (name) {
            case kSoReuseAddr:
            case kSoReusePort: reuse_address_ = v != 0; return 0;
            case kSoSndBuf: send_buffer_ = v; return 0;
            case kSoRcvBuf: receive_buffer_ = v; return 0;
            case kSoKeepAlive:
            case kSoLinger:
            case kSoBroadcast:
            case kSoRcvTimeo:
            case kSoSndTimeo: return 0;
            default: return -ENOPROTOOPT;
        }
    }
    if (level == kIpprotoTcp || level == kIpprotoIp) return 0;  // tuning knobs: accepted
    return -ENOPROTOOPT;
}

int64_t Socket::get_option(int level, int name, uint8_t* value, size_t& length) {
    int v;
    if (level != kSolSocket) return -ENOPROTOOPT;
    switch (name) {
        case kSoType: v = type(); break;
        case kSoError: v = 0; break;
        case kSoReuseAddr:
        case kSoReusePort: v = reuse_address_; break;
        case kSoSndBuf: v = send_buffer_; break;
        case kSoRcvBuf: v = receive_buffer_; break;
        case kSoKeepAlive:
        case kSoAcceptConn: v = 0; break;
        default: return -ENOPROTOOPT;
    }
    length = min<size_t>(length, 4);
    memcpy(value, &v, length);
    return 0;
}

int64_t create_socket(int type, int protocol, uint32_t flags, RefPtr<fs::File>& out) {
    if (type == 1 && (protocol == 0 || protocol == 6)) {
        out = RefPtr<fs::File>(new TcpSocket(flags));
        return 0;
    }
    if (type == 2 && (protocol == 0 || protocol == 17)) {
        out = RefPtr<fs::File>(new UdpSocket(flags));
        return 0;
    }
    return -EPROTONOSUPPORT;
}

}  // namespace kiln::net
