// An IPv4 interface address with its prefix length, "10.77.0.1/24".
#pragma once

#include <cstdint>
#include <string>

namespace kiln::netns {

struct Ipv4Prefix {
    uint32_t address = 0;  // host byte order
    uint8_t length = 32;

    // "A.B.C.D/N" or "A.B.C.D" (a /32). Throws NetnsError quoting the text.
    static Ipv4Prefix parse(const std::string& text);
    std::string address_string() const;  // "10.77.0.1"
    std::string to_string() const;       // "10.77.0.1/24"
    uint32_t broadcast() const;          // host byte order
};

}  // namespace kiln::netns
