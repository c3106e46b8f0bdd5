#include "net/bytes.h"

namespace kiln::net {

uint32_t checksum_add(uint32_t sum, const void* data, size_t size) {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t acc = sum;
    // Eight bytes at a time: the ones'-complement sum is order-independent per 16-bit word.
    while (size >= 8) {
        uint64_t word;
        __builtin_memcpy(&word, p, 8);
        acc += (word & 0xffffffff) + (word >> 32);
        p += 8;
        size -= 8;
    }
    while (size >= 2) {
        uint16_t word;
        __builtin_memcpy(&word, p, 2);
        acc += word;
        p += 2;
        size -= 2;
    }
    if (size) acc += *p;  // little-endian: the odd byte is the low half of a word
    while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
    return static_cast<uint32_t>(acc);
}

uint16_t checksum_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    // The sum was taken over little-endian loads of big-endian words: the fold is byte-swapped,
    // so it goes back into memory with a native store.
    return static_cast<uint16_t>(~sum);
}

uint32_t pseudo_header_sum(uint32_t source, uint32_t destination, uint8_t protocol, uint16_t length) {
    uint8_t pseudo[12];
    store32(pseudo, source);
    store32(pseudo + 4, destination);
    pseudo[8] = 0;
    pseudo[9] = protocol;
    store16(pseudo + 10, length);
    return checksum_add(0, pseudo, sizeof(pseudo));
}

}  // namespace kiln::net
