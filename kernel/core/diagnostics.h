// Diagnostic switches on the command line, for testing how failures are reported:
//   kiln.exit_status=N     end the VM with status N once booted
//   kiln.test.fault=KIND   fail on purpose: `ud` (unhandled #UD), `pf` (unhandled page fault),
//                          `triple` (a triple fault), `hang` (spin with interrupts off)
#pragma once

#include "lib/cmdline.h"

namespace kiln::diagnostics {

// Acts on the switches above; returns only if none is set.
void run(const Cmdline& cmdline);

}  // namespace kiln::diagnostics
