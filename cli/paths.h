// Where kiln finds its state and the parts it runs.
#pragma once

#include <string>

namespace kiln::cli {

// KILN_STATE_DIR, or /var/lib/kiln.
std::string state_dir();

// The Kiln kernel (images::default_kernel_path: KILN_KERNEL, else beside this executable's
// directory). Throws std::runtime_error naming where it looked.
std::string kernel_path();

}  // namespace kiln::cli
