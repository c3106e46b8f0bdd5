// The `proc` backend: the Kiln kernel as a Linux process, under kiln-proc (abi/kiln/proc.h).
//
// What a CPU gives the other backends, the host kernel gives this one:
// - the interrupt flag is a byte of memory (as on PVM); a host signal that finds it off is
//   remembered and delivered when the kernel turns it on, so no host call guards a critical
//   section (Unikraft's linuxu paid an rt_sigprocmask for each);
// - the timer is a POSIX timer on CLOCK_MONOTONIC that raises SIGALRM at the TSC deadline;
// - exceptions are SIGSEGV, SIGILL, SIGFPE, SIGBUS and SIGTRAP, turned into the same
//   InterruptFrame the IDT would have built, so fixups and demand paging work unchanged;
// - the network card is kiln-proc's tap, read and written with host calls; it raises no signal:
//   the kernel reads it when it goes idle and, while busy, on a 1 ms tick (tap.cpp);
// - idle is one ppoll that sleeps until a signal or a frame on the tap;
// - kiln-vmm's control port and serial port are served here, in the process: the console is a
//   write to the console fd, exit is exit_group.
// - the application's system calls come through Syscall User Dispatch (SIGSYS), and whatever
//   interrupts the application (SIGSYS, SIGSEGV, SIGALRM...) enters the kernel as a CPU would:
//   a frame on the thread's kernel stack, the handler, then return_to_user (entry.S);
// - the application's pages are the instance's memfd mapped where the application wants them
//   (mm/address_space.cpp tells each change through user_pages_mapped and friends).
// There are no descriptor tables, MSRs or page tables to load.
#pragma once

#include "kiln/proc.h"
#include "platform/platform.h"

namespace kiln::platform {

class ProcBackend final : public Backend {
  public:
    const char* name() const override { return "proc"; }
    Kind kind() const override { return Kind::kProc; }

    void irq_disable() override;
    void irq_enable() override;
    bool irq_enabled() const override;
    void wait_for_interrupt() override;

    uint64_t read_msr(uint32_t msr) override;
    void write_msr(uint32_t msr, uint64_t value) override;
    void load_page_table(uint64_t) override {}
    void flush_tlb_page(uintptr_t) override {}
    uint64_t fault_address() override;

    void out8(uint16_t port, uint8_t value) override;
    void out32(uint16_t port, uint32_t value) override;
    uint8_t in8(uint16_t port) override;

    uint64_t enable_user_features(bool xsave, uint64_t xcr0, bool fsgsbase) override;
    void set_fs_base(uint64_t base) override;
    bool kernel_pages_supervisor_only() const override { return false; }

    void load_gdt(const void*, uint16_t) override {}
    void load_idt(const void*, uint16_t) override {}
    void load_task_register(uint16_t) override {}

    void user_pages_mapped(uint64_t va, uint64_t phys, uint64_t length, uint32_t prot) override;
    void user_pages_protected(uint64_t start, uint64_t end, uint32_t prot) override;
    void user_range_unmapped(uint64_t start, uint64_t end) override;
    bool kernel_range_in_user_half(uint64_t& start, uint64_t& end) const override;

    void timer_init(uint64_t tsc_khz) override;
    void timer_arm(uint64_t deadline_tsc) override;
    void timer_disarm() override;
    void end_of_interrupt() override {}
    const char* timer_description() override { return "host POSIX timer (SIGALRM)"; }

    bool start_network_device() override;
    bool start_block_devices() override;  // volume.cpp
    void start_control_channel() override;
};

}  // namespace kiln::platform

namespace kiln::proc {

// The tap's interrupt vector: the first device vector, which no IOAPIC routes on this backend;
// the control channel's the next.
inline constexpr uint8_t kTapVector = 0x30;
inline constexpr uint8_t kControlVector = 0x31;

// Set up by kiln_proc_start from kiln-proc's handoff, before any other kernel code runs.
const abi::ProcHandoff& handoff();
// Unmaps what kiln-proc left in the process outside the instance's memory (proc.cpp).
void release_host_address_space();
// Installs the host signal handlers on their own stack, and Syscall User Dispatch for the
// application's system calls (interrupts.cpp).
void install_signal_handlers();
// Loads kiln-proc's seccomp allowlist (proc.cpp).
void enter_sandbox();
// The host page fault address of the exception being handled.
uint64_t current_fault_address();

// The virtual interrupt flag and the host timer (interrupts.cpp).
void disable_interrupts();
void enable_interrupts();
bool interrupts_enabled();
void wait_for_interrupt();
void timer_init(uint64_t tsc_khz);
void timer_arm(uint64_t deadline_tsc);
void timer_disarm();
// For parking (control.cpp): the device signals held back in the host (returns the old mask),
// and every device marked for a look when interrupts come back on; resume_timer after a restore.
uint64_t block_device_signals();
void restore_signal_mask(uint64_t mask);
void mark_devices_pending();
void resume_timer();
// The host's FS base is unknown in a new process: the next set_fs_base goes to the host.
void forget_fs_base();

// The channel to kiln-proc's supervisor (control.cpp): true if a message was sent.
bool send_to_supervisor(abi::ProcControl kind, uint32_t arg0 = 0, uint64_t arg1 = 0);
// Returns into the park of the snapshot this process's memory came from.
[[noreturn]] void continue_parked_kernel();

}  // namespace kiln::proc
