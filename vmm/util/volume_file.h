// A volume's host file, opened for the instance: O_RDWR (O_RDONLY for a read-only volume) and
// locked with flock (LOCK_EX, or LOCK_SH when read-only) without waiting, so that two instances
// never write one volume. Shared by kiln-vmm's virtio-blk device and kiln-proc's handoff.
#pragma once

#include <cstdint>
#include <string>

#include "host/unique_fd.h"
#include "options.h"

namespace kiln::vmm {

struct VolumeFile {
    UniqueFd fd;
    uint64_t bytes = 0;  // a multiple of 512
    bool read_only = false;
    std::string path;
};

// Throws VmmError naming the file: missing, not a regular file, not whole sectors, or in use.
VolumeFile open_volume(const VolumeOptions& volume);

}  // namespace kiln::vmm
