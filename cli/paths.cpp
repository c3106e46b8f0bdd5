#include "paths.h"

#include <cstdlib>

#include "images/image_store.h"

namespace kiln::cli {

std::string state_dir() {
    const char* dir = std::getenv("KILN_STATE_DIR");
    return dir && *dir ? dir : "/var/lib/kiln";
}

std::string kernel_path() { return images::default_kernel_path(); }

}  // namespace kiln::cli
