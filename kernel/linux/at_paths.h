// What the *at() system calls share (openat, newfstatat, execveat...): AT_FDCWD, the AT_ flags
// and the directory a relative path starts from.
#pragma once

#include <stdint.h>

#include "fs/vfs.h"
#include "lib/ref_ptr.h"

namespace kiln::linux {

inline constexpr int kAtFdcwd = -100;
inline constexpr uint64_t kAtSymlinkNoFollow = 0x100, kAtRemoveDir = 0x200, kAtEmptyPath = 0x1000;

// The directory a relative path given with `dirfd` starts from: the working directory for
// AT_FDCWD, else the directory dirfd is open on (-EBADF, -ENOTDIR).
int64_t base_dir(uint64_t dirfd, RefPtr<fs::Node>& out);

}  // namespace kiln::linux
