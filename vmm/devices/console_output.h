// Where the guest's console goes: kiln-vmm's stdout, or a file (`--console FILE`). Shared by the
// UART and the control port's console_write, which may run on different vCPU threads.
#pragma once

#include <mutex>
#include <span>
#include <string>

#include "host/unique_fd.h"

namespace kiln::vmm {

class ConsoleOutput {
  public:
    // An empty path means stdout.
    explicit ConsoleOutput(const std::string& path);
    void write(std::span<const uint8_t> data);

  private:
    std::mutex mutex_;
    UniqueFd owned_;
    int fd_ = 1;
};

}  // namespace kiln::vmm
