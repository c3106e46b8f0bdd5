#include "drivers/block/device.h"

namespace kiln::block {
namespace {

// A handful of volumes per instance; more are refused by the tender before boot.
constexpr size_t kMaxDevices = 16;
constinit Device* devices[kMaxDevices] = {};
constinit size_t count = 0;

}  // namespace

void register_device(Device* d) {
    if (count < kMaxDevices) devices[count++] = d;
}

size_t device_count() { return count; }

Device* device(size_t index) { return index < count ? devices[index] : nullptr; }

}  // namespace kiln::block
