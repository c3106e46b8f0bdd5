// Network byte order and the Internet checksum.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::net {

constexpr uint16_t swap16(uint16_t v) { return static_cast<uint16_t>((v << 8) | (v >> 8)); }
constexpr uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }
constexpr uint16_t to_net16(uint16_t v) { return swap16(v); }
constexpr uint16_t from_net16(uint16_t v) { return swap16(v); }
constexpr uint32_t to_net32(uint32_t v) { return swap32(v); }
constexpr uint32_t from_net32(uint32_t v) { return swap32(v); }

inline uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t load32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void store16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
inline void store32(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

// The ones'-complement sum of 16-bit words (RFC 1071), not yet folded or inverted.
uint32_t checksum_add(uint32_t sum, const void* data, size_t size);
uint16_t checksum_fold(uint32_t sum);  // folded and inverted: ready for the header
// The TCP/UDP pseudo-header's contribution.
uint32_t pseudo_header_sum(uint32_t source, uint32_t destination, uint8_t protocol, uint16_t length);

}  // namespace kiln::net
