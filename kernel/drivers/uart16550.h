// The 16550 UART on COM1, polled, transmit only.
#pragma once

#include <stddef.h>

namespace kiln::uart16550 {

void write(const char* data, size_t size);

}  // namespace kiln::uart16550
