#include "devices/io_bus.h"

#include <algorithm>

#include "util/error.h"

namespace kiln::vmm {

void IoBus::add(uint16_t base, uint16_t length, PioDevice& device) {
    for (const Range& r : ranges_)
        if (base < r.base + r.length && r.base < base + length)
            throw VmmError("internal: I/O port ranges overlap at " + std::to_string(base));
    ranges_.push_back({base, length, &device});
}

IoBus::Range* IoBus::find(uint16_t port) {
    auto it = std::find_if(ranges_.begin(), ranges_.end(),
                           [port](const Range& r) { return port >= r.base && port - r.base < r.length; });
    return it == ranges_.end() ? nullptr : &*it;
}

bool IoBus::read(uint16_t port, std::span<uint8_t> data) {
    Range* r = find(port);
    if (r == nullptr) {
        std::fill(data.begin(), data.end(), uint8_t{0xff});
        return false;
    }
    r->device->read(static_cast<uint16_t>(port - r->base), data);
    return true;
}

bool IoBus::write(uint16_t port, std::span<const uint8_t> data) {
    Range* r = find(port);
    if (r == nullptr) return false;
    r->device->write(static_cast<uint16_t>(port - r->base), data);
    return true;
}

}  // namespace kiln::vmm
