#include "platform/platform.h"

#include "platform/hw.h"
#include "platform/pvm.h"

namespace kiln::platform {
namespace {

// Constant-initialised: usable before global constructors run.
constinit HwBackend hw_backend;
constinit PvmBackend pvm_backend;
constinit Backend* active = &hw_backend;

}  // namespace

void init(Kind kind) { active = kind == Kind::kPvm ? static_cast<Backend*>(&pvm_backend) : &hw_backend; }

Backend& current() { return *active; }

}  // namespace kiln::platform
