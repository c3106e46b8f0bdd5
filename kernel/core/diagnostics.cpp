#include "core/diagnostics.h"

#include "arch/x86_64/cpu.h"
#include "console/console.h"
#include "core/panic.h"
#include "platform/platform.h"

namespace kiln::diagnostics {
namespace {

[[noreturn]] void fault(StringView kind) {
    console::print("diagnostics: causing a {} fault on purpose\n", kind);
    console::flush();
    if (kind == "ud") asm volatile("ud2");
    if (kind == "pf") *reinterpret_cast<volatile uint64_t*>(0x00007f0000000000) = 1;
    if (kind == "triple") {
        // No IDT at all: the #UD becomes #GP, then #DF, then a shutdown.
        static const char no_idt[16] = {};
        platform::current().load_idt(no_idt, 0);
        asm volatile("ud2");
    }
    if (kind == "hang") {
        platform::irq_disable();
        for (;;) cpu::pause();
    }
    panic("kiln.test.fault: unknown kind '{}' (ud, pf, triple, hang)", kind);
}

}  // namespace

void run(const Cmdline& cmdline) {
    StringView kind;
    if (cmdline.find("kiln.test.fault", kind)) fault(kind);
    uint64_t status = 0;
    if (cmdline.number("kiln.exit_status", status)) power_off(static_cast<int>(status & 0xff));
}

}  // namespace kiln::diagnostics
