#include "platform/platform.h"

#ifdef KILN_PLATFORM_PROC
#include "platform/proc/proc.h"
#else
#include "platform/hw.h"
#include "platform/pvm.h"
#endif

namespace kiln::platform {
namespace {

// Constant-initialised: usable before global constructors run. Which backends exist is the
// build's choice: kiln.elf has hw and pvm (boot.S picks), kiln-proc.elf only proc.
#ifdef KILN_PLATFORM_PROC
constinit ProcBackend proc_backend;
constinit Backend* active = &proc_backend;
#else
constinit HwBackend hw_backend;
constinit PvmBackend pvm_backend;
constinit Backend* active = &hw_backend;
#endif

}  // namespace

void init([[maybe_unused]] Kind kind) {
#ifndef KILN_PLATFORM_PROC
    active = kind == Kind::kPvm ? static_cast<Backend*>(&pvm_backend) : &hw_backend;
#endif
}

Backend& current() { return *active; }

}  // namespace kiln::platform
