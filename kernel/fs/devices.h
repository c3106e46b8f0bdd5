// The device nodes under /dev, and the few /proc and /sys files libc start-up reads.
#pragma once

#include "lib/string_view.h"

namespace kiln::fs {

// Creates /dev (null, zero, full, random, urandom, console, tty, stdin/stdout/stderr links),
// /proc/self/exe (pointing at `exe_path`), /proc/cpuinfo-free essentials, /sys cpu counts.
void create_device_nodes();
void set_exe_path(StringView path);

// Fills `buffer` with random bytes (RDRAND where the CPU has it, mixed with the TSC).
void random_bytes(void* buffer, size_t size);

}  // namespace kiln::fs
