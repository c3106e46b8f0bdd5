// The host networking library reports failures as NetnsError: one line naming the namespace, link
// or command that failed and why, so a test log or the daemon's log says what to look at.
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

#include "host/errno_message.h"

namespace kiln::netns {

class NetnsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// "what: strerror(error)", for failed system calls.
inline NetnsError system_error(const std::string& what, int error = errno) {
    return NetnsError(errno_message(what, error));
}

}  // namespace kiln::netns
