// The device nodes under /dev, and the few /proc and /sys files libc start-up reads.
#pragma once

#include "lib/string_view.h"

namespace kiln::fs {

// Creates /dev (null, zero, full, random, urandom, console, tty, stdin/stdout/stderr links),
// /proc/self/exe (pointing at `exe_path`), /proc/cpuinfo-free essentials, /sys cpu counts.
void create_device_nodes();
// Where /proc/self/exe points: a function giving the calling process's program path.
void set_exe_path_source(StringView (*source)());

// Fills `buffer` with random bytes (RDRAND where the CPU has it, mixed with the TSC).
void random_bytes(void* buffer, size_t size);

}  // namespace kiln::fs
