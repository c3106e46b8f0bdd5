// Fatal errors and the end of the VM.
#pragma once

#include "console/console.h"

namespace kiln {

// Flushes the console and ends the VM with `status` (kiln-vmm: its exit status; QEMU: through
// isa-debug-exit, which makes QEMU exit with status*2+1).
[[noreturn]] void power_off(int status);

[[noreturn]] void panic_now();

// Prints "panic: <message>" and ends the VM as a crash (kiln-vmm dumps the vCPU and fails).
template <typename... Args>
[[noreturn]] void panic(StringView fmt, const Args&... args) {
    console::print("panic: ");
    console::print(fmt, args...);
    console::print("\n");
    panic_now();
}

}  // namespace kiln
