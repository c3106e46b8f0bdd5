// What the kernel learned at boot: the loader's information, the command line, the monitor.
#pragma once

#include "boot/boot_info.h"
#include "lib/cmdline.h"

namespace kiln {

struct BootEnv {
    BootInfo boot_info;
    Cmdline cmdline;
    bool under_kiln_vmm = false;  // kiln-vmm put `kiln.vmm=` on the command line
    uint64_t entry_tsc = 0;
    uint64_t memory_bytes = 0;
};

BootEnv& boot_env();

}  // namespace kiln
