#include "linux/syscall.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/layout.h"
#include "console/console.h"
#include "core/errno.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "linux/user_memory.h"
#include "platform/platform.h"
#include "sched/thread.h"

extern "C" char syscall_entry[];
extern "C" char user_return_trampoline[];

namespace kiln::linux {
namespace {

constinit SyscallHandler table[kSyscallCount] = {};
constinit uint64_t unknown_logged[(kSyscallCount + 63) / 64] = {};

struct NamedSyscall {
    uint64_t number;
    const char* name;
};
constexpr NamedSyscall kNames[] = {
#define KILN_SYSCALL_NAME(number, name) {number, #name},
#include "linux/syscall_names.inc"
#undef KILN_SYSCALL_NAME
};

constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrFmask = 0xc0000084;
// RFLAGS bits cleared on entry: TF, IF, DF, IOPL, NT, AC.
constexpr uint64_t kEntryFlagsMask = 0x47700;

int64_t unknown(uint64_t number) {
    // Logged once per number, by name.
    const bool first = number >= kSyscallCount || !(unknown_logged[number / 64] & (1ull << (number % 64)));
    if (number < kSyscallCount) unknown_logged[number / 64] |= 1ull << (number % 64);
    if (first) console::print("kiln: unsupported system call {} ({}) returns ENOSYS\n", syscall_name(number), number);
    return -ENOSYS;
}

bool canonical(uint64_t address) { return address < 0x0000800000000000 || address >= 0xffff800000000000; }

}  // namespace

const char* syscall_name(uint64_t number) {
    for (const auto& n : kNames)
        if (n.number == number) return n.name;
    return "?";
}

void init_syscalls() {
    auto& platform = platform::current();
    // SYSRET loads CS from STAR[63:48] + 16 and SS from + 8 (0x33, 0x2b); SYSCALL loads CS from
    // STAR[47:32] and SS from + 8 (0x10, 0x18).
    platform.write_msr(kMsrStar, (uint64_t{KILN_SEL_USER32_CS} << 48) | (uint64_t{KILN_SEL_KERNEL_CS} << 32));
    platform.write_msr(kMsrLstar, reinterpret_cast<uint64_t>(syscall_entry));
    platform.write_msr(kMsrFmask, kEntryFlagsMask);
    register_process_syscalls(table);
    register_memory_syscalls(table);
    register_file_syscalls(table);
    register_time_syscalls(table);
    register_thread_syscalls(table);
    register_signal_syscalls(table);
    register_poll_syscalls(table);
    register_futex_syscalls(table);
    register_socket_syscalls(table);
    register_identity_syscalls(table);
    register_spawn_syscalls(table);
}

}  // namespace kiln::linux

using namespace kiln;
using namespace kiln::linux;

extern "C" void syscall_dispatch(arch::InterruptFrame* frame) {
    platform::irq_enable();
    const uint64_t number = frame->rax;
    frame->error_code = number;  // kept for restarting the call after a signal
    SyscallArgs args{{frame->rdi, frame->rsi, frame->rdx, frame->r10, frame->r8, frame->r9}, frame};
    Process& caller = process();
    mm::address_space().set_owner(caller.memory->owner);  // what it maps is its image's
    const bool strace = caller.strace;
    if (strace)
        console::print("[{}] {}({:#x}, {:#x}, {:#x}, {:#x}, {:#x}, {:#x})\n", sched::current().tid,
                       syscall_name(number), args.a[0], args.a[1], args.a[2], args.a[3], args.a[4], args.a[5]);
    int64_t result;
    if (number < kSyscallCount && table[number] != nullptr)
        result = table[number](args);
    else
        result = unknown(number);
    if (strace) console::print("[{}] {} = {}\n", sched::current().tid, syscall_name(number), result);
    frame->rax = static_cast<uint64_t>(result);
}

// Runs with the frame of the thread about to enter user mode. Returns 0 for sysretq, 1 for iretq.
extern "C" int prepare_return_to_user(arch::InterruptFrame* frame) {
    ThreadInfo* info = current_info();
    for (;;) {
        platform::irq_enable();
        sched::preempt_if_needed();
        if (info != nullptr) {
            hold_at_user_return(*info);
            if (deliver_pending_signal(*frame)) continue;
        }
        platform::irq_disable();
        break;
    }
    const bool exact = frame->vector != kSyscallVector || (info != nullptr && info->exact_return);
    if (info) info->exact_return = false;
    frame->vector = kSyscallVector;  // whatever brought us here is handled
    if (!exact) {
        // sysretq faults in kernel mode on a non-canonical RIP (on Intel): return with iretq.
        return canonical(frame->rip) ? 0 : 1;
    }
    if (platform::current().kind() == platform::Kind::kHw) return 1;
    // PVM: only sysretq enters user mode. Park RCX, R11 and RIP below the red zone and return
    // through user_return_trampoline, which restores them (entry.S).
    const uint64_t slot = frame->rsp - 128 - 24;
    const uint64_t saved[3] = {frame->rcx, frame->r11, frame->rip};
    if (copy_to_user(slot, saved, sizeof(saved)) != 0) {
        console::print("kiln: user stack unusable at {:#x}; ending the application\n", frame->rsp);
        exit_application(139);
    }
    frame->rsp = slot;
    frame->rip = reinterpret_cast<uint64_t>(user_return_trampoline);
    return 0;
}
