#include "devices/console_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.h"

namespace kiln::vmm {

ConsoleOutput::ConsoleOutput(const std::string& path) {
    if (path.empty()) return;
    owned_.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!owned_.valid()) throw system_error("--console " + path);
    fd_ = owned_.get();
}

void ConsoleOutput::write(std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    while (!data.empty()) {
        ssize_t n = ::write(fd_, data.data(), data.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // a closed stdout must not take the VM down
        data = data.subspan(static_cast<size_t>(n));
    }
}

}  // namespace kiln::vmm
