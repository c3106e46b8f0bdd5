#include "netns/ipv4.h"

#include <arpa/inet.h>

#include <cctype>

#include "netns/error.h"

namespace kiln::netns {

Ipv4Prefix Ipv4Prefix::parse(const std::string& text) {
    auto fail = [&] { return NetnsError("'" + text + "' is not an IPv4 address with a prefix (like 10.77.0.1/24)"); };
    const size_t slash = text.find('/');
    const std::string address = text.substr(0, slash);
    in_addr parsed{};
    if (::inet_pton(AF_INET, address.c_str(), &parsed) != 1) throw fail();
    Ipv4Prefix prefix;
    prefix.address = ntohl(parsed.s_addr);
    if (slash != std::string::npos) {
        const std::string length = text.substr(slash + 1);
        if (length.empty() || length.size() > 2) throw fail();
        for (char c : length)
            if (!std::isdigit(static_cast<unsigned char>(c))) throw fail();
        const int value = std::stoi(length);
        if (value > 32) throw fail();
        prefix.length = static_cast<uint8_t>(value);
    }
    return prefix;
}

std::string Ipv4Prefix::address_string() const {
    in_addr a{};
    a.s_addr = htonl(address);
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &a, text, sizeof(text));
    return text;
}

std::string Ipv4Prefix::to_string() const { return address_string() + "/" + std::to_string(length); }

uint32_t Ipv4Prefix::broadcast() const {
    const uint32_t host_mask = length == 0 ? ~0u : (1u << (32 - length)) - 1;
    return address | host_mask;
}

}  // namespace kiln::netns
