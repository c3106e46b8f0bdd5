#include "drivers/block/start.h"

#include "drivers/block/device.h"
#include "drivers/virtio/block.h"
#include "platform/platform.h"

namespace kiln::block {

size_t start_devices(const Cmdline& cmdline) {
    if (!platform::current().start_block_devices()) virtio::start_virtio_block(cmdline);
    return device_count();
}

}  // namespace kiln::block
