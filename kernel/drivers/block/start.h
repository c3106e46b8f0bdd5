// Brings up the instance's block devices: the backend's own (proc: the volume files kiln-proc
// opened), or else the virtio-blk devices the command line announces. Each is registered with
// block::register_device in the order of the tender's --volume flags.
#pragma once

#include "lib/cmdline.h"

namespace kiln::block {

// Once, at boot, before the file systems mount. Returns how many devices there are.
size_t start_devices(const Cmdline& cmdline);

}  // namespace kiln::block
