#include "arch/x86_64/interrupts.h"

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "console/console.h"
#include "core/panic.h"
#include "platform/platform.h"
#include "sched/thread.h"

struct ExtableEntry {
    uint64_t from;
    uint64_t to;
};

extern "C" char interrupt_stubs[];
extern "C" const ExtableEntry __ex_table_start[];
extern "C" const ExtableEntry __ex_table_end[];

namespace kiln::arch {
namespace {

struct [[gnu::packed]] IdtGate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;  // present, DPL 0, 64-bit interrupt gate
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};
static_assert(sizeof(IdtGate) == 16);

alignas(16) constinit IdtGate idt[256] = {};
constinit InterruptHandler handlers[256] = {};
constinit uint64_t fixup_vector = 0;
constinit PageFaultHandler page_fault_handler = nullptr;
constinit UserExceptionHandler user_exception_handler = nullptr;
constexpr uint64_t kUserHalfEnd = 0x0000800000000000;

constexpr const char* kExceptionNames[32] = {
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualization",
    "#CP control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "#HV hypervisor injection",
    "#VC VMM communication",
    "#SX security",
    "reserved",
};

void set_gate(uint8_t vector, uint8_t ist) {
    const uint64_t handler = reinterpret_cast<uint64_t>(interrupt_stubs) + 16ull * vector;
    idt[vector] = {static_cast<uint16_t>(handler),
                   KILN_SEL_KERNEL_CS,
                   ist,
                   0x8e,
                   static_cast<uint16_t>(handler >> 16),
                   static_cast<uint32_t>(handler >> 32),
                   0};
}

bool apply_fixup(InterruptFrame& frame) {
    for (const ExtableEntry* e = __ex_table_start; e != __ex_table_end; ++e) {
        if (e->from == frame.rip) {
            frame.rip = e->to;
            fixup_vector = frame.vector;
            return true;
        }
    }
    return false;
}

void dump(const InterruptFrame& f) {
    const char* name = f.vector < 32 ? kExceptionNames[f.vector] : "interrupt";
    console::print("exception {} ({}) error {:#x} at rip {:#018x}\n", f.vector, name, f.error_code, f.rip);
    if (f.vector == 14) console::print("  fault address {:#018x}\n", platform::current().fault_address());
    console::print("  rax {:016x} rbx {:016x} rcx {:016x} rdx {:016x}\n", f.rax, f.rbx, f.rcx, f.rdx);
    console::print("  rsi {:016x} rdi {:016x} rbp {:016x} rsp {:016x}\n", f.rsi, f.rdi, f.rbp, f.rsp);
    console::print("  r8  {:016x} r9  {:016x} r10 {:016x} r11 {:016x}\n", f.r8, f.r9, f.r10, f.r11);
    console::print("  r12 {:016x} r13 {:016x} r14 {:016x} r15 {:016x}\n", f.r12, f.r13, f.r14, f.r15);
    console::print("  cs {:#x} ss {:#x} rflags {:#x}\n", f.cs, f.ss, f.rflags);
    // The kernel keeps frame pointers: follow them for a backtrace of return addresses.
    if ((f.cs & 3) != 0) return;
    console::print("  backtrace:");
    uint64_t rbp = f.rbp;
    for (int depth = 0; depth < 16 && rbp >= KILN_DIRECT_MAP_BASE && rbp % 8 == 0; ++depth) {
        const uint64_t* frame = reinterpret_cast<const uint64_t*>(rbp);
        const uint64_t return_address = frame[1];
        if (return_address < KILN_KERNEL_BASE) break;
        console::print(" {:#x}", return_address);
        if (frame[0] <= rbp) break;  // frames go up the stack
        rbp = frame[0];
    }
    console::print("\n");
}

}  // namespace

void init_cpu_tables() {
    load_gdt_and_tss();
    for (int v = 0; v < 256; ++v) set_gate(static_cast<uint8_t>(v), 0);
    // A double fault, NMI or machine check may arrive on a broken stack.
    set_gate(2, kCriticalIst);
    set_gate(8, kCriticalIst);
    set_gate(18, kCriticalIst);
    platform::current().load_idt(idt, sizeof(idt) - 1);
}

void set_interrupt_handler(uint8_t vector, InterruptHandler handler) { handlers[vector] = handler; }

uint64_t last_fixup_vector() { return fixup_vector; }

void set_page_fault_handler(PageFaultHandler handler) { page_fault_handler = handler; }
void set_user_exception_handler(UserExceptionHandler handler) { user_exception_handler = handler; }

}  // namespace kiln::arch

using kiln::arch::InterruptFrame;

// A kernel stack has no guard page below it: one that overflows writes over whatever lies there
// (another thread's stack, page tables), and the damage shows later and elsewhere, as a triple
// fault. Each interrupt checks the room left on the stack it arrived on, where an interrupt on
// top of the deepest call chain makes it deepest.
static void check_stack_room(const InterruptFrame& frame) {
    constexpr size_t kMinimumRoom = 2048;
    const size_t room = kiln::sched::stack_room(reinterpret_cast<uintptr_t>(&frame));
    if (room >= kMinimumRoom) return;
    kiln::console::print("kiln: kernel stack of thread '{}' nearly full: {} bytes left\n", kiln::sched::current().name,
                         room);
    kiln::arch::dump(frame);
    kiln::panic("kernel stack overflow");
}

extern "C" void interrupt_dispatch(InterruptFrame* frame) {
    using namespace kiln::arch;
    check_stack_room(*frame);
    if (frame->vector < 32) {
        uint64_t fault_address = 0;
        if (frame->vector == 14) {
            fault_address = kiln::platform::current().fault_address();
            const bool write = frame->error_code & 2, exec = frame->error_code & 16;
            // Demand paging, for the application and for the kernel copying to or from it.
            if (fault_address < kUserHalfEnd && page_fault_handler && page_fault_handler(fault_address, write, exec))
                return;
        }
        if ((frame->cs & 3) == 3 && user_exception_handler) {
            user_exception_handler(*frame, fault_address);
            return;
        }
        if (apply_fixup(*frame)) return;
        dump(*frame);
        kiln::panic("unhandled exception in the kernel");
    }
    if (frame->vector == kSpuriousVector) return;
    if (InterruptHandler h = handlers[frame->vector]) h(*frame);
    kiln::platform::current().end_of_interrupt();
}
