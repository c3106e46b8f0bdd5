// The Linux personality of the kernel: brings up system calls, the file system and the
// application.
#pragma once

#include "boot/boot_info.h"
#include "lib/cmdline.h"

namespace kiln::linux {

// Sets up system calls, the root file system (the initrd, if any, plus /dev and /proc) and fault
// handling. Returns false, having said why, if the initrd is unusable.
bool init(const Cmdline& cmdline, const BootInfo& boot_info);

}  // namespace kiln::linux
