// The guest side of kiln-vmm's control port (abi/kiln/hostcall.h).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kiln/hostcall.h"

namespace kiln::hostcall {

void console_write(const char* data, size_t size);
void boot_timestamp(abi::BootStage stage);
// The application listens: protocol 6 (TCP) or 17 (UDP), and the port.
void ready(uint32_t protocol, uint16_t port);
[[noreturn]] void exit(int status);
[[noreturn]] void panic();

}  // namespace kiln::hostcall
