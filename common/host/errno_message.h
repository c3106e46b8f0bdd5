// "what: strerror(error)": how every host component words a failed system call. Each component
// keeps its own exception type (VmmError, NetnsError) so its callers can tell whose failure it is.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace kiln {

inline std::string errno_message(const std::string& what, int error = errno) {
    return what + ": " + std::strerror(error);
}

}  // namespace kiln
