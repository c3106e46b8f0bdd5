#include "network/dns_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cstdio>

#include "netns/error.h"

namespace kiln::network {

DnsServer::DnsServer(const netns::Namespace& ns, uint32_t address, Resolver resolve)
    : resolve_(std::move(resolve)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake_.valid()) throw netns::system_error("dns: eventfd");
    socket_ = ns.run([&] {
        UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
        if (!fd.valid()) throw netns::system_error("dns: socket");
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_port = htons(53);
        at.sin_addr.s_addr = htonl(address);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0)
            throw netns::system_error("dns: bind port 53 in " + ns.name());
        return fd;
    });
    thread_ = std::thread([this] { serve(); });
}

DnsServer::~DnsServer() {
    const uint64_t one = 1;
    if (::write(wake_.get(), &one, sizeof(one)) < 0) std::perror("dns: eventfd write");
    thread_.join();
}

void DnsServer::serve() {
    for (;;) {
        pollfd fds[2] = {{socket_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0) continue;
        if (fds[1].revents) return;
        uint8_t packet[1500];
        sockaddr_in from{};
        socklen_t from_size = sizeof(from);
        const ssize_t n =
            ::recvfrom(socket_.get(), packet, sizeof(packet), 0, reinterpret_cast<sockaddr*>(&from), &from_size);
        if (n <= 0) continue;
        const auto reply = dns_answer(packet, static_cast<size_t>(n), resolve_);
        if (!reply.empty())
            ::sendto(socket_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_size);
    }
}

}  // namespace kiln::network
