#include "console/console.h"
#include "core/boot_env.h"
#include "core/panic.h"
#include "drivers/hostcall.h"
#include "kiln/hostcall.h"
#include "platform/platform.h"

namespace kiln {
namespace {

// QEMU's isa-debug-exit device (`-device isa-debug-exit,iobase=0xf4,iosize=4`).
constexpr uint16_t kQemuDebugExitPort = 0xf4;

[[noreturn]] void halt_forever() {
    platform::irq_disable();
    for (;;) platform::current().wait_for_interrupt();
}

}  // namespace

void power_off(int status) {
    console::flush();
    if (boot_env().under_kiln_vmm) hostcall::exit(status);
    platform::current().out32(kQemuDebugExitPort, static_cast<uint32_t>(status));
    halt_forever();  // no debug-exit device: nothing else can end the VM
}

void panic_now() {
    console::flush();
    if (boot_env().under_kiln_vmm) hostcall::panic();
    power_off(abi::kExitGuestCrash);
}

}  // namespace kiln
