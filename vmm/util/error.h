// kiln-vmm reports failures as VmmError: one clear line naming what was wrong. main() prints it
// and exits with abi::kExitVmmError.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

#include "host/errno_message.h"

namespace kiln::vmm {

class VmmError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// "what: strerror(errno)", for failed system calls.
inline VmmError system_error(const std::string& what, int error = errno) {
    return VmmError(errno_message(what, error));
}

}  // namespace kiln::vmm
