// Interrupt descriptor table, exception reports, and fixups for instructions expected to fault.
#pragma once

#include <stdint.h>

namespace kiln::arch {

struct InterruptFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error_code;
    uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};

inline constexpr uint8_t kTimerVector = 0x20;
inline constexpr uint8_t kSpuriousVector = 0xff;

using InterruptHandler = void (*)(InterruptFrame&);

// Loads the GDT, TSS and IDT. Every exception not covered by a fixup prints a register dump and
// ends the VM as a crash.
void init_cpu_tables();
void set_interrupt_handler(uint8_t vector, InterruptHandler handler);

// The vector of the last exception that a fixup handled (for tests of the exception path).
uint64_t last_fixup_vector();

// Page faults on application addresses go here first (demand paging); true if resolved.
using PageFaultHandler = bool (*)(uint64_t address, bool write, bool exec);
void set_page_fault_handler(PageFaultHandler handler);
// Exceptions raised in user mode that are not resolved page faults (they become signals).
using UserExceptionHandler = void (*)(InterruptFrame& frame, uint64_t fault_address);
void set_user_exception_handler(UserExceptionHandler handler);

}  // namespace kiln::arch

// An exception-table entry: if the instruction at `from` faults, execution resumes at `to`.
#define KILN_EXTABLE(from, to) ".pushsection __ex_table, \"a\"\n.balign 8\n.quad " from ", " to "\n.popsection\n"
