// The GDT in Linux's layout (PVM's native mode was proven with it) and the TSS with its stacks.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/gdt.h"
#include "arch/x86_64/layout.h"
#include "platform/platform.h"

namespace kiln::arch {
namespace {

struct [[gnu::packed]] Tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

constexpr size_t kStackSize = 16384;
alignas(16) constinit char kernel_entry_stack[kStackSize];  // TSS.RSP0: entries from user mode
alignas(16) constinit char critical_stack[kStackSize];      // IST1: #DF, NMI, #MC

constinit Tss tss = {};

alignas(16) constinit uint64_t gdt[10] = {
    0,
    0x00cf9a000000ffff,  // 0x08 kernel 32-bit code
    0x00af9a000000ffff,  // 0x10 kernel 64-bit code
    0x00cf92000000ffff,  // 0x18 kernel data
    0x00cffa000000ffff,  // 0x20 user 32-bit code (0x23)
    0x00cff2000000ffff,  // 0x28 user data (0x2b)
    0x00affa000000ffff,  // 0x30 user 64-bit code (0x33)
    0,
    0,  // 0x40 TSS, filled in at run time
    0,
};

}  // namespace

// Read by syscall_entry (entry.S).
extern "C" {
constinit uint64_t cpu_kernel_rsp = 0;
constinit uint64_t cpu_user_rsp = 0;
}

void set_kernel_stack(uint64_t top) {
    tss.rsp[0] = top;
    cpu_kernel_rsp = top;
}

void load_gdt_and_tss() {
    tss.rsp[0] = reinterpret_cast<uint64_t>(kernel_entry_stack + kStackSize);
    tss.ist[kCriticalIst - 1] = reinterpret_cast<uint64_t>(critical_stack + kStackSize);
    tss.iomap_base = sizeof(Tss);  // no I/O bitmap

    const uint64_t base = reinterpret_cast<uint64_t>(&tss);
    const uint64_t limit = sizeof(Tss) - 1;
    gdt[8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
             (((base >> 24) & 0xff) << 56);
    gdt[9] = base >> 32;

    auto& platform = platform::current();
    platform.load_gdt(gdt, sizeof(gdt) - 1);
    platform.load_task_register(KILN_SEL_TSS);
}

}  // namespace kiln::arch
