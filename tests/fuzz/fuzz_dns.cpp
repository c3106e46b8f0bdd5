// libFuzzer: the private network's name server on arbitrary packets. Every guest can send it
// anything; any outcome but a reply or silence is a bug, and a reply must be a well-formed DNS
// message that answers the query's id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "network/dns_message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const kiln::network::Resolver resolve = [](const std::string& name) -> std::optional<uint32_t> {
        if (name == "web") return 0x0a4d0002;
        return std::nullopt;
    };
    const auto reply = kiln::network::dns_answer(data, size, resolve);
    if (reply.empty()) return 0;
    if (reply.size() < 12 || size < 2 || reply[0] != data[0] || reply[1] != data[1]) std::abort();
    if ((reply[2] & 0x80) == 0) std::abort();  // QR: a reply says it is one
    return 0;
}
