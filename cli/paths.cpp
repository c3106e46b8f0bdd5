#include "paths.h"

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace kiln::cli {
namespace fs = std::filesystem;

std::string state_dir() {
    const char* dir = std::getenv("KILN_STATE_DIR");
    return dir && *dir ? dir : "/var/lib/kiln";
}

std::string kernel_path() {
    if (const char* path = std::getenv("KILN_KERNEL"); path && *path) return path;
    std::error_code error;
    const fs::path bin = fs::read_symlink("/proc/self/exe", error).parent_path();
    const fs::path candidates[] = {bin / ".." / "kernel" / "kiln.elf", bin / ".." / "lib" / "kiln" / "kiln.elf"};
    for (const auto& candidate : candidates)
        if (fs::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
    throw std::runtime_error("no Kiln kernel at " + candidates[0].lexically_normal().string() + " or " +
                             candidates[1].lexically_normal().string() + " (set KILN_KERNEL)");
}

}  // namespace kiln::cli
