// Kiln's vDSO (kernel/vdso/): one image in the application's half for every process, and the
// data page it reads the clock from.
#pragma once

#include <stdint.h>

namespace kiln::linux {

// Maps the image and its data page (the kernel's mappings: they outlive every program) and
// publishes the clock. False if there is no room or memory.
bool map_vdso();
// Where the image is (AT_SYSINFO_EHDR); 0 if it is not mapped.
uint64_t vdso_base();

}  // namespace kiln::linux
