#include "drivers/uart16550.h"

#include "platform/platform.h"

namespace kiln::uart16550 {
namespace {

constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kLineStatus = kCom1 + 5;
constexpr uint8_t kTransmitterEmpty = 0x20;

void put(char c) {
    auto& p = platform::current();
    // Bounded wait: a missing UART reads 0xff, a stuck one must not hang the kernel.
    for (int spins = 0; spins < 100000 && (p.in8(kLineStatus) & kTransmitterEmpty) == 0; ++spins) {
    }
    p.out8(kCom1, static_cast<uint8_t>(c));
}

}  // namespace

void write(const char* data, size_t size) {
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == '\n') put('\r');
        put(data[i]);
    }
}

}  // namespace kiln::uart16550
