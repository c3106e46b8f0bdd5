// Host signals as the proc backend's interrupts and exceptions.
//
// Every handler runs on one alternate signal stack inside the kernel image, so a signal never
// writes below the application's stack, and everything the kernel changes stays in the
// instance's memory (which is what a snapshot saves).
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/layout.h"
#include "kiln/hostcall.h"
#include "platform/proc/host.h"
#include "platform/proc/proc.h"

extern "C" void interrupt_dispatch(kiln::arch::InterruptFrame* frame);
extern "C" char proc_syscall_entry[], proc_interrupt_entry[];  // entry.S
extern "C" char __proc_text_start[], __proc_text_end[];        // kernel-proc.ld
extern "C" char user_return_trampoline[], user_return_trampoline_end[];
extern "C" char proc_return_restart[], proc_return_jump[];
extern "C" uint64_t cpu_kernel_rsp;  // the running thread's kernel stack top (gdt.cpp)

namespace kiln::proc {

struct VirtualInterruptFlag {
    volatile uint8_t enabled;
    volatile uint8_t pending;      // device signals (kDeviceSignals' bits) that came while `enabled` was 0
    volatile uint32_t deliveries;  // interrupts delivered so far: wait_for_interrupt's progress
};
// entry.S reads these two bytes by offset.
static_assert(__builtin_offsetof(VirtualInterruptFlag, enabled) == 0);
static_assert(__builtin_offsetof(VirtualInterruptFlag, pending) == 1);

}  // namespace kiln::proc

// entry.S turns the flag on as it returns to the application.
extern "C" {
constinit kiln::proc::VirtualInterruptFlag proc_interrupt_flag{};
}

namespace kiln::proc {
namespace {

constexpr VirtualInterruptFlag& flag = proc_interrupt_flag;
constinit uint64_t fault_address = 0;

constexpr size_t kSignalStackSize = 64 * 1024;
alignas(16) constinit char signal_stack[kSignalStackSize];

constinit int host_timer = -1;
constinit uint64_t ns_per_tick_mult = 0;  // ns = (ticks * mult) >> 32, as in time/clock.cpp
constinit uint64_t tsc_at_init = 0;
constinit uint64_t monotonic_at_init = 0;
constinit volatile uint64_t armed_deadline_tsc = 0;  // the host timer's; 0: not armed, or it fired
constinit uint64_t kernel_deadline_tsc = 0;          // the kernel's own next deadline; 0: none
constinit uint64_t busy_poll_ticks = 0;              // kBusyPollNs in TSC ticks
// While the kernel is busy, frames wait in the tap until it goes idle (its ppoll waits on the tap)
// or until this tick, whichever comes first: what an application spinning in user mode for long
// gets instead of an interrupt per frame.
constexpr uint64_t kBusyPollNs = 1'000'000;
constexpr uint64_t linux_syscall_vector = 0x100;  // linux/syscall.h's kSyscallVector

// The host signals that are this backend's interrupt lines: the timer and kiln-proc's control
// channel (O_ASYNC, F_SETSIG). The tap has none (see kBusyPollNs): its line is raised by the idle
// wait and by the timer.
struct DeviceSignal {
    int signal;
    uint8_t vector;
    uint8_t pending_bit;
};
constexpr DeviceSignal kDeviceSignals[] = {
    {host::kSigAlrm, arch::kTimerVector, 1},
    {host::kSigUsr1, kControlVector, 4},
};
constexpr uint8_t kTapPendingBit = 2;
constexpr uint64_t kDeviceSignalMask = host::signal_bit(host::kSigAlrm) | host::signal_bit(host::kSigUsr1);
constexpr uint8_t kAllPendingBits = 1 | kTapPendingBit | 4;

inline void compiler_barrier() { asm volatile("" ::: "memory"); }

void deliver(uint8_t vector) {
    arch::InterruptFrame frame{};
    frame.vector = vector;
    frame.cs = KILN_SEL_KERNEL_CS;
    flag.enabled = 0;
    compiler_barrier();
    flag.deliveries = flag.deliveries + 1;
    interrupt_dispatch(&frame);
    compiler_barrier();
    flag.enabled = 1;
}

arch::InterruptFrame frame_from(const host::Sigcontext& c) {
    arch::InterruptFrame f{};
    linux::registers_from_context(c, f);
    f.vector = c.trapno;
    f.error_code = c.err;
    f.cs = KILN_SEL_KERNEL_CS;
    f.ss = KILN_SEL_KERNEL_DS;
    return f;
}

void set_host_timer(uint64_t deadline_monotonic_ns) {
    const host::Timespec value[2] = {{0, 0},
                                     {static_cast<int64_t>(deadline_monotonic_ns / 1000000000),
                                      static_cast<int64_t>(deadline_monotonic_ns % 1000000000)}};
    constexpr long kTimerAbstime = 1;
    host_syscall(host::kTimerSettime, host_timer, kTimerAbstime, reinterpret_cast<long>(value), 0, 0, 0);
}

// The host timer for the kernel's deadline and, unless `idle`, the busy tick (kBusyPollNs):
// whichever comes first. Idle, it is set to the kernel's deadline exactly (or off).
void arm_host_timer(bool idle) {
    uint64_t target = kernel_deadline_tsc;
    if (!idle) {
        const uint64_t now = cpu::rdtsc();
        // A deadline already past is the kernel's timer interrupt on its way (the signal handler
        // re-arms before the kernel has seen it): the tick only, or the signal would repeat.
        if (target <= now) target = 0;
        const uint64_t tick = now + busy_poll_ticks;
        if (target == 0 || tick < target) target = tick;
    } else if (armed_deadline_tsc == target) {
        return;
    }
    if (!idle && armed_deadline_tsc != 0 && armed_deadline_tsc <= target) return;
    armed_deadline_tsc = target;
    if (target == 0) {
        set_host_timer(0);  // off
        return;
    }
    const uint64_t ticks = target > tsc_at_init ? target - tsc_at_init : 0;
    const auto ns = static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * ns_per_tick_mult) >> 32);
    set_host_timer(monotonic_at_init + ns + 1);  // never 0, which would disarm it
}

// The kernel's text is the kernel, but for the trampoline the application runs on its way back.
bool in_application(uint64_t rip) {
    const auto at = [](const char* symbol) { return reinterpret_cast<uint64_t>(symbol); };
    if (rip >= at(user_return_trampoline) && rip < at(user_return_trampoline_end)) return true;
    return rip < at(__proc_text_start) || rip >= at(__proc_text_end);
}

// What the CPU does on an interrupt, exception or SYSCALL from user mode: the application's
// registers become a frame at the top of the thread's kernel stack, and the kernel runs from
// `entry` with interrupts off. The host's sigreturn does the switch, so the kernel never runs
// in the signal handler, and the application's FPU state comes back as it was.
void enter_kernel(host::Ucontext& context, uint64_t vector, uint64_t error_code, const char* entry) {
    auto* frame = reinterpret_cast<arch::InterruptFrame*>(cpu_kernel_rsp - sizeof(arch::InterruptFrame));
    *frame = frame_from(context.mcontext);
    frame->vector = vector;
    frame->error_code = error_code;
    frame->cs = KILN_SEL_USER_CS;
    frame->ss = KILN_SEL_USER_DS;
    context.mcontext.rsp = reinterpret_cast<uint64_t>(frame);
    context.mcontext.rdi = reinterpret_cast<uint64_t>(frame);
    context.mcontext.rip = reinterpret_cast<uint64_t>(entry);
    flag.enabled = 0;
}

// The last instruction before the application, `jmp *%rcx`, has every register of the
// application but RIP: a signal there belongs to the application at RCX.
void step_into_application(host::Ucontext& context) {
    if (context.mcontext.rip == reinterpret_cast<uint64_t>(proc_return_jump))
        context.mcontext.rip = context.mcontext.rcx;
}

const DeviceSignal& device_signal(int signal) {
    for (const DeviceSignal& d : kDeviceSignals)
        if (d.signal == signal) return d;
    return kDeviceSignals[0];
}

void on_device_signal(int signal, host::Siginfo*, host::Ucontext* context) {
    const DeviceSignal& device = device_signal(signal);
    if (signal == host::kSigAlrm) {
        // Every tick looks at the tap too, and the next tick is armed while the kernel is busy.
        armed_deadline_tsc = 0;
        flag.pending = flag.pending | kTapPendingBit;
        arm_host_timer(false);
    }
    step_into_application(*context);
    if (in_application(context->mcontext.rip)) {
        enter_kernel(*context, device.vector, 0, proc_interrupt_entry);
        return;
    }
    if (!flag.enabled) {
        flag.pending = flag.pending | device.pending_bit;  // delivered at the kernel's next irq_enable
        // On the way back to the application (entry.S): start that way again, where the pending
        // signal is seen and delivered before the application runs.
        const uint64_t rip = context->mcontext.rip;
        if (rip >= reinterpret_cast<uint64_t>(proc_return_restart) &&
            rip < reinterpret_cast<uint64_t>(proc_return_jump)) {
            context->mcontext.rip = reinterpret_cast<uint64_t>(proc_return_restart);
            context->mcontext.rsp = cpu_kernel_rsp - sizeof(arch::InterruptFrame);
        }
        return;
    }
    deliver(device.vector);
}

// A system call of the application, caught by Syscall User Dispatch (rax holds its number, rip
// the address after the instruction). A SIGSYS of any other kind is the host's seccomp filter
// refusing a call the kernel made: nothing to recover.
void on_syscall_signal(int, host::Siginfo* info, host::Ucontext* context) {
    constexpr int32_t kSysUserDispatch = 2;
    if (info->code != kSysUserDispatch || !in_application(context->mcontext.rip)) {
        static const char message[] = "kiln: proc: the host refused a system call of the kernel\n";
        host::write(handoff().console_fd, message, sizeof(message) - 1);
        host::exit_group(abi::kExitGuestCrash);
    }
    host::Sigcontext& c = context->mcontext;
    c.rcx = c.rip;  // as SYSCALL leaves them
    c.r11 = c.eflags;
    enter_kernel(*context, linux_syscall_vector, 0, proc_syscall_entry);
}

// A fault of the kernel's own code: the host tells the vector (trapno), the error code and, for
// a page fault, the address, which is all the IDT path needs (fixups, demand paging, reports).
void on_exception_signal(int, host::Siginfo* info, host::Ucontext* context) {
    if (info->code <= 0) return;  // sent by kill(), not raised by an instruction
    fault_address = context->mcontext.cr2;
    step_into_application(*context);  // a jump to a non-canonical address faults on the jump
    if (in_application(context->mcontext.rip)) {
        enter_kernel(*context, context->mcontext.trapno, context->mcontext.err, proc_interrupt_entry);
        return;
    }
    arch::InterruptFrame frame = frame_from(context->mcontext);
    const uint8_t was_enabled = flag.enabled;
    flag.enabled = 0;
    compiler_barrier();
    interrupt_dispatch(&frame);
    compiler_barrier();
    flag.enabled = was_enabled;
    linux::registers_to_context(frame, context->mcontext);
}

struct HostSigaction {
    void (*handler)(int, host::Siginfo*, host::Ucontext*);
    uint64_t flags;
    void* restorer;
    uint64_t mask;
};
constexpr uint64_t kSaSiginfo = 4, kSaOnstack = 0x08000000, kSaRestorer = 0x04000000;

void install(int signal, void (*handler)(int, host::Siginfo*, host::Ucontext*)) {
    // A device signal never interrupts a handler; exceptions inside one are handled like any other.
    const HostSigaction action{handler, kSaSiginfo | kSaOnstack | kSaRestorer, host_signal_restorer, kDeviceSignalMask};
    if (host_syscall(host::kRtSigaction, signal, reinterpret_cast<long>(&action), 0, 8, 0, 0) != 0) {
        static const char message[] = "kiln: proc: rt_sigaction failed\n";
        host::write(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
}

// Every `syscall` outside the kernel's text raises SIGSYS (Linux 5.11+); the kernel's own, in
// host.S, go to the host.
void dispatch_application_syscalls() {
    constexpr long kPrSetSyscallUserDispatch = 59, kOn = 1;
    const auto start = reinterpret_cast<uint64_t>(__proc_text_start);
    const auto length = reinterpret_cast<uint64_t>(__proc_text_end) - start;
    if (host_syscall(host::kPrctl, kPrSetSyscallUserDispatch, kOn, static_cast<long>(start), static_cast<long>(length),
                     0, 0) != 0) {
        static const char message[] = "kiln: proc: the host has no Syscall User Dispatch (Linux 5.11 or later)\n";
        host::write(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
}

}  // namespace

namespace {

// The instance's one host timer, made before the seccomp filter, which allows only arming it.
void create_host_timer() {
    struct {
        uint64_t value;
        int32_t signal, notify;
        int32_t pad[12];
    } event{0, host::kSigAlrm, 0 /* SIGEV_SIGNAL */, {}};
    int32_t id = -1;
    if (host_syscall(host::kTimerCreate, 1 /* CLOCK_MONOTONIC */, reinterpret_cast<long>(&event),
                     reinterpret_cast<long>(&id), 0, 0, 0) != 0) {
        static const char message[] = "kiln: proc: timer_create failed\n";
        host::write(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
    host_timer = id;
}

}  // namespace

void install_signal_handlers() {
    struct {
        void* base;
        int32_t flags;
        uint64_t size;
    } stack{signal_stack, 0, sizeof(signal_stack)};
    host_syscall(host::kSigaltstack, reinterpret_cast<long>(&stack), 0, 0, 0, 0, 0);
    for (const DeviceSignal& device : kDeviceSignals) install(device.signal, on_device_signal);
    install(host::kSigSys, on_syscall_signal);
    constexpr int kExceptions[] = {host::kSigSegv, host::kSigBus, host::kSigIll, host::kSigFpe, host::kSigTrap};
    for (int signal : kExceptions) install(signal, on_exception_signal);
    create_host_timer();
    dispatch_application_syscalls();
    // kiln-proc kept them blocked until now (a frame could reach the tap before the handlers).
    host_syscall(host::kRtSigprocmask, 1 /* SIG_UNBLOCK */, reinterpret_cast<long>(&kDeviceSignalMask), 0, 8, 0, 0);
}

uint64_t current_fault_address() { return fault_address; }

void disable_interrupts() {
    flag.enabled = 0;
    compiler_barrier();
}

void enable_interrupts() {
    compiler_barrier();
    flag.enabled = 1;
    compiler_barrier();
    // A device signal that came while the flag was off is delivered now. One arriving after this
    // test finds the flag on and is delivered by its handler, which leaves `pending` alone.
    while (flag.pending) {
        const uint8_t bits = flag.pending;
        flag.pending = 0;
        for (const DeviceSignal& device : kDeviceSignals)
            if (bits & device.pending_bit) deliver(device.vector);
        if (bits & kTapPendingBit) deliver(kTapVector);
    }
}

bool interrupts_enabled() { return flag.enabled != 0; }

// Returns once an interrupt was delivered, with the flag on. The device signals are blocked in
// the host between the test and the sleep, and ppoll unblocks them atomically: none is lost in
// between.
void wait_for_interrupt() {
    uint64_t old_mask = 0;
    host_syscall(host::kRtSigprocmask, 0 /* SIG_BLOCK */, reinterpret_cast<long>(&kDeviceSignalMask),
                 reinterpret_cast<long>(&old_mask), 8, 0, 0);
    const uint32_t before = flag.deliveries;
    enable_interrupts();
    if (flag.deliveries == before) {
        arm_host_timer(true);  // an idle instance wakes for its own deadlines only, not the busy tick
        const uint64_t sleep_mask = old_mask & ~kDeviceSignalMask;
        host::Pollfd tap{handoff().net_fd, host::kPollIn, 0};
        const long ready = host_syscall(host::kPpoll, reinterpret_cast<long>(&tap), tap.fd >= 0 ? 1 : 0, 0,
                                        reinterpret_cast<long>(&sleep_mask), 8, 0);
        if (ready > 0 && (tap.revents & host::kPollIn)) deliver(kTapVector);
    }
    host_syscall(host::kRtSigprocmask, 2 /* SIG_SETMASK */, reinterpret_cast<long>(&old_mask), 0, 8, 0, 0);
}

void timer_init(uint64_t tsc_khz) {
    ns_per_tick_mult = (1000000ull << 32) / tsc_khz;
    busy_poll_ticks = kBusyPollNs * tsc_khz / 1000000;
    tsc_at_init = cpu::rdtsc();
    monotonic_at_init = host::monotonic_ns();
}

uint64_t block_device_signals() {
    uint64_t old_mask = 0;
    host_syscall(host::kRtSigprocmask, 0 /* SIG_BLOCK */, reinterpret_cast<long>(&kDeviceSignalMask),
                 reinterpret_cast<long>(&old_mask), 8, 0, 0);
    return old_mask;
}

void restore_signal_mask(uint64_t mask) {
    host_syscall(host::kRtSigprocmask, 2 /* SIG_SETMASK */, reinterpret_cast<long>(&mask), 0, 8, 0, 0);
}

// Every device is looked at again when interrupts come back on: what happened while the kernel
// was parked (or before this process existed) was never signalled to it.
void mark_devices_pending() { flag.pending = flag.pending | kAllPendingBits; }

// A new process: its host timer is new and unarmed, and the TSC-to-host-clock pairing is redone.
void resume_timer() {
    armed_deadline_tsc = 0;
    tsc_at_init = cpu::rdtsc();
    monotonic_at_init = host::monotonic_ns();
}

// The kernel has one deadline at a time and re-arms whenever it changes (at most context
// switches and every wake), so the host calls are kept for the changes that matter: a host timer
// already due no later than the new deadline stays, since the kernel's handler re-arms a timer
// that fires early; and a disarm leaves it, since the handler ignores a timer nothing waits for
// (one spare signal, where most disarms are followed at once by a new deadline).
void timer_arm(uint64_t deadline_tsc) {
    kernel_deadline_tsc = deadline_tsc;
    arm_host_timer(false);
}

void timer_disarm() {
    kernel_deadline_tsc = 0;
    arm_host_timer(false);
}

}  // namespace kiln::proc
