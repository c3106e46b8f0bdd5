// Unpacks the initrd (a cpio archive) into the root file system, without copying file contents.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::fs {

// Returns true on success; on failure prints what was wrong and where.
bool unpack_initrd(const uint8_t* data, size_t size);

}  // namespace kiln::fs
