// Sockets as the Linux system calls see them: AF_INET stream (TCP) and datagram (UDP) sockets,
// open file descriptions over the protocol objects of net/tcp.h and net/udp.h.
#pragma once

#include <stdint.h>

#include "fs/file.h"
#include "net/tcp.h"
#include "net/udp.h"

namespace kiln::net {

struct SocketAddress {
    uint32_t ip = 0;  // host byte order
    uint16_t port = 0;
};

class Socket : public fs::File {
  public:
    explicit Socket(uint32_t flags) : File(flags | fs::kOpenReadWrite) {}
    Socket* as_socket() override { return this; }
    uint32_t anonymous_mode() const override { return static_cast<uint32_t>(fs::Type::kSocket) | 0777; }

    virtual int type() const = 0;  // SOCK_STREAM 1, SOCK_DGRAM 2
    virtual int64_t bind(const SocketAddress& address) = 0;
    virtual int64_t listen(int backlog) = 0;
    virtual int64_t accept(RefPtr<fs::File>& out, SocketAddress& peer, uint32_t flags) = 0;
    virtual int64_t connect(const SocketAddress& address) = 0;
    virtual int64_t local_address(SocketAddress& out) = 0;
    virtual int64_t peer_address(SocketAddress& out) = 0;
    virtual int64_t shutdown(int how) = 0;
    // flags: MSG_PEEK, MSG_DONTWAIT, MSG_NOSIGNAL...; `to`/`from` may be null.
    virtual int64_t send_to(const fs::IoBuffer& data, size_t size, int flags, const SocketAddress* to) = 0;
    virtual int64_t receive_from(const fs::IoBuffer& data, size_t size, int flags, SocketAddress* from) = 0;
    virtual int64_t set_option(int level, int name, const uint8_t* value, size_t length);
    virtual int64_t get_option(int level, int name, uint8_t* value, size_t& length);

    int64_t read(const fs::IoBuffer& buffer, size_t size) override { return receive_from(buffer, size, 0, nullptr); }
    int64_t write(const fs::IoBuffer& buffer, size_t size) override { return send_to(buffer, size, 0, nullptr); }

  protected:
    bool reuse_address_ = false;
    int send_buffer_ = 212992, receive_buffer_ = 212992;
};

// A new socket of `type` (SOCK_STREAM, SOCK_DGRAM) for AF_INET, or a negative errno.
int64_t create_socket(int type, int protocol, uint32_t flags, RefPtr<fs::File>& out);

inline constexpr int kMsgPeek = 0x2, kMsgDontWait = 0x40, kMsgWaitAll = 0x100, kMsgNoSignal = 0x4000;

}  // namespace kiln::net
