// The proc backend's channel to kiln-proc's supervisor: pause, resume and snapshots.
//
// kiln-vmm pauses a VM from outside: a vCPU that leaves KVM_RUN has all its state in registers
// the monitor can read. A process's registers are the host kernel's, so here the kernel parks
// itself. Asked to (kPark, with SIGUSR1 as the channel's interrupt), a kernel thread of its own
// saves its few callee-saved registers in memory, holds the device signals back in the host, and
// blocks; every other thread is already switched out, its registers and FPU state in memory. The
// instance is then nothing but its memory, which the supervisor may copy into a snapshot.
// kResume lets it go on. A process restored from that snapshot sets the host up again
// (kiln_proc_resume) and jumps back into the same park, which then rebuilds what the host held
// for the old process: the application's mappings, the timer, the network's neighbours.
#include "kiln/hostcall.h"
#include "kiln/proc.h"

#include "mm/address_space.h"
#include "net/arp.h"
#include "net/interface.h"
#include "net/stack.h"
#include "platform/proc/host.h"
#include "platform/proc/proc.h"
#include "sched/thread.h"

extern "C" {
struct ParkContext {
    uint64_t rbx, rbp, r12, r13, r14, r15, rsp, rip;
};
__attribute__((returns_twice)) int proc_park_save(ParkContext* context);  // entry.S
[[noreturn]] void proc_park_jump(const ParkContext* context);             // entry.S
}

namespace kiln::proc {
namespace {

constexpr long kEintr = -4;

constinit ParkContext park_context{};
constinit volatile bool message_pending = false;

sched::WaitQueue& control_queue() {
    static sched::WaitQueue queue;
    return queue;
}

int control_fd() { return handoff().control_fd; }

// One message if there is one (the socket is non-blocking).
bool receive(abi::ProcControlMessage& message) {
    for (;;) {
        const long n = host::read(control_fd(), &message, sizeof(message));
        if (n == kEintr) continue;
        if (n == 0) host::exit_group(abi::kExitVmmError);  // the supervisor is gone
        return n == sizeof(message);
    }
}

// Parked: nothing but the channel wakes the kernel, and the device signals stay queued in the
// host until it goes on. A restore held ahead of its wake also goes on when a writer comes to its
// resume FIFO (`resume_fd`, -1 for none): any event there counts, a byte or a writer that left
// without one, so that a FIFO that stays ready can never make this loop spin.
void wait_for_resume(int resume_fd) {
    const uint64_t held = block_device_signals() | host::signal_bit(host::kSigUsr1);
    for (;;) {
        abi::ProcControlMessage message{};
        if (receive(message)) {
            if (message.kind == abi::ProcControl::kResume) return;
            continue;  // a second kPark: already parked
        }
        host::Pollfd waits[2] = {{control_fd(), host::kPollIn, 0}, {resume_fd, host::kPollIn, 0}};
        host_syscall(host::kPpoll, reinterpret_cast<long>(waits), resume_fd >= 0 ? 2 : 1, 0,
                     reinterpret_cast<long>(&held), 8, 0);
        if (resume_fd >= 0 && waits[1].revents != 0) return;
    }
}

// The host's view of the instance, rebuilt in a restored process.
void rebuild_host_state() {
    forget_fs_base();
    resume_timer();
    mm::address_space().remap_present_pages();
}

// Who has our address now: a restored instance may come back on another host or tap.
void announce_restored() {
    if (net::enabled() && net::device() != nullptr) {
        net::announce();
        net::announce_again(3);
    }
}

void park() {
    platform::IrqGuard guard;
    const uint64_t mask = block_device_signals();
    if (proc_park_save(&park_context) == 0) {
        send_to_supervisor(abi::ProcControl::kParked);
        wait_for_resume(-1);
    } else {
        rebuild_host_state();
        if ((handoff().flags & abi::kProcHold) != 0) {  // prepared ahead: the wake says when
            send_to_supervisor(abi::ProcControl::kParked);
            wait_for_resume(handoff().resume_fd);
        }
        announce_restored();
    }
    mark_devices_pending();
    restore_signal_mask(
        mask & ~(host::signal_bit(host::kSigAlrm) | host::signal_bit(host::kSigIo) | host::signal_bit(host::kSigUsr1)));
    send_to_supervisor(abi::ProcControl::kResumed);
}

void control_thread(void*) {
    for (;;) {
        message_pending = false;
        abi::ProcControlMessage message{};
        while (receive(message))
            if (message.kind == abi::ProcControl::kPark) park();
        platform::IrqGuard guard;
        if (message_pending) continue;
        sched::wait(control_queue(), 0, false);
    }
}

}  // namespace

bool send_to_supervisor(abi::ProcControl kind, uint32_t arg0, uint64_t arg1) {
    if (control_fd() < 0) return false;
    const abi::ProcControlMessage message{kind, arg0, arg1};
    long n;
    do n = host::write(control_fd(), &message, sizeof(message));
    while (n == kEintr);
    return n == sizeof(message);
}

void continue_parked_kernel() {
    if (park_context.rip == 0) {
        static const char message[] = "kiln: proc: this memory holds no parked kernel to resume\n";
        host::write(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
    proc_park_jump(&park_context);
}

}  // namespace kiln::proc

namespace kiln::platform {

void ProcBackend::start_control_channel() {
    if (proc::control_fd() < 0) return;
    arch::set_interrupt_handler(proc::kControlVector, [](arch::InterruptFrame&) {
        proc::message_pending = true;
        sched::wake(proc::control_queue());
        sched::request_preemption();
    });
    if (sched::spawn_kernel(proc::control_thread, nullptr, "control") == nullptr) {
        static const char message[] = "kiln: proc: no memory for the control channel's thread\n";
        proc::host::write(2, message, sizeof(message) - 1);
        proc::host::exit_group(abi::kExitVmmError);
    }
}

}  // namespace kiln::platform
