// The application's FPU/SSE/AVX state. The kernel itself never touches these registers (it is
// built with -mgeneral-regs-only), so they always hold the running thread's state: saved and
// restored only when threads switch and when a signal frame is built.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::fpu {

// Enables the state components the CPU offers (x87, SSE, AVX, AVX-512) and sizes the save area.
// `allow_xsave` false forces FXSAVE (kiln.fpu=fxsave, for diagnosis).
void init(bool allow_xsave = true);

size_t state_size();  // bytes for one thread's state (64-byte aligned)
bool uses_xsave();
uint64_t enabled_features();  // XCR0

// A save area in the clean initial state (as after `fninit`, MXCSR 0x1f80).
void init_state(void* area);
void save(void* area);
void restore(const void* area);

}  // namespace kiln::fpu
