// The private network's name server: answers `<instance>.internal` with the instance's private IP.
// It listens on the bridge's address inside kilnd's network namespace, the only resolver the
// guests are given (kiln.dns=), so guests find each other by name. Other names are refused: the
// private network has no way out, so there is nothing to forward them to.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "host/unique_fd.h"
#include "netns/namespace.h"
#include "network/dns_message.h"

namespace kiln::network {

class DnsServer {
  public:
    // Binds UDP `address`:53 inside `ns` and answers on its own thread until destroyed.
    DnsServer(const netns::Namespace& ns, uint32_t address, Resolver resolve);
    ~DnsServer();
    DnsServer(const DnsServer&) = delete;
    DnsServer& operator=(const DnsServer&) = delete;

  private:
    void serve();

    Resolver resolve_;
    UniqueFd socket_;
    UniqueFd wake_;  // eventfd: ends serve()
    std::thread thread_;
};

}  // namespace kiln::network
