// The relay's two ways of moving bytes, on real TCP connections over the host's loopback: small
// messages are copied, a transfer that fills a read moves to splice(2), and a destination that
// takes nothing leaves the bytes in flight, never lost, with the relay waiting to write.
#include "balancer/relay.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "host/unique_fd.h"

namespace {

using kiln::UniqueFd;
using kiln::balancer::Relay;

struct TcpPair {
    UniqueFd near, far;  // `near` is the relay's end, nonblocking
};

TcpPair connected_pair() {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(at);
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&at), size) != 0 || ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&at), &size) != 0)
        throw std::runtime_error("relay test: loopback listener");
    TcpPair pair;
    pair.far.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(pair.far.get(), reinterpret_cast<sockaddr*>(&at), size) != 0)
        throw std::runtime_error("relay test: connect");
    pair.near.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    return pair;
}

bool readable(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 1000) == 1;
}

// Reads exactly `n` bytes from a blocking socket, pumping `relay` whenever it has nothing yet.
std::string read_through(Relay& relay, int fd, size_t n) {
    std::string got;
    char buffer[1 << 16];
    for (int idle = 0; got.size() < n && idle < 1000;) {
        relay.pump();
        const ssize_t r = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
        if (r > 0) {
            got.append(buffer, static_cast<size_t>(r));
            idle = 0;
        } else {
            ++idle;
            (void)readable(fd);
        }
    }
    return got;
}

class RelayTest : public ::testing::Test {
  protected:
    TcpPair client = connected_pair(), upstream = connected_pair();
    Relay relay{client.near.get(), upstream.near.get()};
};

TEST_F(RelayTest, SmallMessagesAreCopiedBothWays) {
    for (int i = 0; i < 20; ++i) {
        const std::string request = "GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n";
        ASSERT_EQ(::send(client.far.get(), request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
        ASSERT_TRUE(readable(client.near.get()));
        EXPECT_EQ(read_through(relay, upstream.far.get(), request.size()), request);
        const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + std::to_string(i % 10) + "\n";
        ASSERT_EQ(::send(upstream.far.get(), response.data(), response.size(), 0),
                  static_cast<ssize_t>(response.size()));
        ASSERT_TRUE(readable(upstream.near.get()));
        EXPECT_EQ(read_through(relay, client.far.get(), response.size()), response);
    }
    EXPECT_FALSE(relay.splicing_up());
    EXPECT_FALSE(relay.splicing_down());
}

TEST_F(RelayTest, ABulkTransferMovesToSpliceAndArrivesWhole) {
    std::string bulk(4 << 20, '\0');
    for (size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<char>((i * 7919) >> 5);
    std::string got;
    size_t sent = 0;
    char buffer[1 << 16];
    for (int idle = 0; got.size() < bulk.size() && idle < 2000;) {
        if (sent < bulk.size()) {
            const ssize_t n = ::send(upstream.far.get(), bulk.data() + sent, bulk.size() - sent, MSG_DONTWAIT);
            if (n > 0) sent += static_cast<size_t>(n);
        }
        relay.pump();
        const ssize_t r = ::recv(client.far.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
        if (r > 0) {
            got.append(buffer, static_cast<size_t>(r));
            idle = 0;
        } else {
            ++idle;
            (void)readable(upstream.near.get());
        }
    }
    EXPECT_TRUE(got == bulk) << "received " << got.size() << " of " << bulk.size() << " bytes";
    EXPECT_TRUE(relay.splicing_down());
    EXPECT_FALSE(relay.splicing_up());
}

TEST_F(RelayTest, BytesADestinationCannotTakeWaitInFlightAndTheRelayAsksToWrite) {
    // The client never reads: its receive buffer and the relay's socket fill up, and what the
    // relay read beyond that must stay with the relay, which then waits to write, not to read.
    const int small = 4096;
    ::setsockopt(client.far.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ::setsockopt(client.near.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    const std::string chunk(1000, 'x');
    size_t sent = 0;
    for (int i = 0; i < 4000 && relay.interest().client == EPOLLIN; ++i) {
        const ssize_t n = ::send(upstream.far.get(), chunk.data(), chunk.size(), MSG_DONTWAIT);
        if (n > 0) sent += static_cast<size_t>(n);
        relay.pump();
    }
    ASSERT_TRUE(relay.interest().client & EPOLLOUT) << "the client's side never filled";
    EXPECT_FALSE(relay.interest().upstream & EPOLLIN) << "reading on would have nowhere to put the bytes";
    relay.pump();  // nothing moves, nothing is lost
    ASSERT_EQ(::shutdown(upstream.far.get(), SHUT_WR), 0);
    std::string got;
    char buffer[1 << 16];
    for (int idle = 0; idle < 200;) {
        relay.pump();
        const ssize_t r = ::recv(client.far.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
        if (r > 0) {
            got.append(buffer, static_cast<size_t>(r));
            idle = 0;
        } else if (r == 0) {
            break;  // the upstream's half-close passed through, after every byte
        } else {
            ++idle;
            (void)readable(client.far.get());
        }
    }
    EXPECT_EQ(got.size(), sent);
    EXPECT_EQ(got.find_first_not_of('x'), std::string::npos);
}

}  // namespace
