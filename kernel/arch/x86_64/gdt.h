#pragma once

#include <stdint.h>

namespace kiln::arch {

// The interrupt-stack-table slot for exceptions that must not run on a possibly broken stack.
inline constexpr int kCriticalIst = 1;

void load_gdt_and_tss();

// The stack the CPU switches to on an interrupt from user mode (TSS.RSP0), and the one the
// syscall entry moves to: the running thread's kernel stack.
void set_kernel_stack(uint64_t top);

}  // namespace kiln::arch
