// The name server's one job, as a pure function: a query packet in, the reply packet out.
// Packets are parsed and built with ldns (NLnet Labs), not by hand: the name server is exposed
// to every guest, and hostile input is exactly what a well-kept DNS library is for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::network {

// "web" -> its IPv4 address (host byte order), or nullopt if no instance has that name.
using Resolver = std::function<std::optional<uint32_t>(const std::string& name)>;

inline constexpr const char* kDomain = "internal";

// The reply to one query packet; empty when the packet deserves none (not a query, or garbage
// too broken to answer).
std::vector<uint8_t> dns_answer(const uint8_t* query, size_t size, const Resolver& resolve);

}  // namespace kiln::network
