// Where kiln finds its state and the parts it runs.
#pragma once

#include <string>

namespace kiln::cli {

// KILN_STATE_DIR, or /var/lib/kiln.
std::string state_dir();

// The Kiln kernel: KILN_KERNEL, else next to this executable's directory (build/bin/kiln finds
// build/kernel/kiln.elf; an installed bin/kiln finds lib/kiln/kiln.elf), so a build tree works
// without an install step. Throws std::runtime_error naming where it looked.
std::string kernel_path();

}  // namespace kiln::cli
