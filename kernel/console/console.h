// The kernel console. Under kiln-vmm it is the control port's buffered console_write (one exit per
// line); elsewhere (QEMU) the 16550 UART on COM1 (one exit per byte, early messages only).
#pragma once

#include <stddef.h>

#include "lib/format.h"

namespace kiln::console {

enum class Backend { kUart, kHostcall };

void set_backend(Backend backend);
void write(const char* data, size_t size);
// Writes `data` at once, as one console call, after whatever is buffered (application output).
void write_block(const char* data, size_t size);
void flush();

Sink& sink();

template <typename... Args>
void print(StringView fmt, const Args&... args) {
    format_to(sink(), fmt, args...);
}

}  // namespace kiln::console
