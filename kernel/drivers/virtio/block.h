// The virtio-blk driver (block.cpp).
#pragma once

#include <stddef.h>

#include "lib/cmdline.h"

namespace kiln::virtio {

// Starts every virtio-blk device the command line announces and registers each with
// block::register_device, in order; returns how many.
size_t start_virtio_block(const Cmdline& cmdline);

}  // namespace kiln::virtio
