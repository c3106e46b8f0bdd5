#include "devices/mmio_bus.h"

#include <algorithm>

#include "util/error.h"

namespace kiln::vmm {

void MmioBus::add(uint64_t base, uint64_t length, MmioDevice& device) {
    for (const Range& r : ranges_)
        if (base < r.base + r.length && r.base < base + length) throw VmmError("internal: MMIO ranges overlap");
    ranges_.push_back({base, length, &device});
}

const MmioBus::Range* MmioBus::find(uint64_t address, size_t size) const {
    for (const Range& r : ranges_)
        if (address >= r.base && address - r.base < r.length && size <= r.length - (address - r.base)) return &r;
    return nullptr;
}

bool MmioBus::read(uint64_t address, std::span<uint8_t> data) {
    const Range* r = find(address, data.size());
    if (r == nullptr) {
        std::fill(data.begin(), data.end(), uint8_t{0});
        return false;
    }
    r->device->read(address - r->base, data);
    return true;
}

bool MmioBus::write(uint64_t address, std::span<const uint8_t> data) {
    const Range* r = find(address, data.size());
    if (r == nullptr) return false;
    r->device->write(address - r->base, data);
    return true;
}

}  // namespace kiln::vmm
