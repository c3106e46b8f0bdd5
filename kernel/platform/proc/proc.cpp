// The proc backend's CPU and its two devices from kiln-vmm: the control port (hostcalls) and
// the serial port's transmit register (the console before the control port is in use).
#include "platform/proc/proc.h"

#include "arch/x86_64/cpu.h"
#include "core/boot_env.h"
#include "core/panic.h"
#include "kiln/hostcall.h"
#include "lib/format.h"
#include "mm/layout.h"
#include "platform/proc/host.h"

extern "C" [[noreturn]] void kiln_start(uint32_t start_info_phys, uint32_t platform_kind);

namespace kiln::proc {
namespace {

constexpr uint16_t kSerialData = 0x3f8, kSerialLineStatus = 0x3fd;
constexpr uint16_t kQemuDebugExitPort = 0xf4;
constexpr uint32_t kMsrStar = 0xc0000081, kMsrLstar = 0xc0000082, kMsrFmask = 0xc0000084;
constexpr long kArchSetFs = 0x1002;

constinit abi::ProcHandoff the_handoff{};

void write_all(int fd, const char* data, size_t size) {
    while (size > 0) {
        const long n = host::write(fd, data, size);
        if (n == -4) continue;  // EINTR
        if (n <= 0) return;     // the console went away: nothing left to tell it
        data += n;
        size -= static_cast<size_t>(n);
    }
}

// kiln-proc's supervisor prints the line kiln-vmm prints when the application listens (which
// tests and scripts wait for) and tells the control socket's clients; without a supervisor's
// channel, the line goes out from here.
int32_t announce_ready(uint64_t protocol, uint64_t port) {
    if (send_to_supervisor(abi::ProcControl::kReady, static_cast<uint32_t>(protocol), port)) return 0;
    char line[64];
    const size_t length = format_buffer(line, sizeof(line), "kiln-proc: guest ready on {}/{}\n",
                                        protocol == 17 ? "udp" : "tcp", static_cast<uint32_t>(port));
    write_all(2, line, length);
    return 0;
}

// kiln-vmm's control port (abi/kiln/hostcall.h), answered in the process.
int32_t hostcall(abi::Hostcall& call) {
    switch (static_cast<abi::HostcallOp>(call.op)) {
        case abi::HostcallOp::kConsoleWrite:
            if (call.arg1 > abi::kMaxConsoleWrite || call.arg0 + call.arg1 > the_handoff.memory_size) return -22;
            write_all(the_handoff.console_fd, static_cast<const char*>(mm::phys_to_virt(call.arg0)), call.arg1);
            return 0;
        case abi::HostcallOp::kExit: host::exit_group(static_cast<int>(call.arg0 & 0xff));
        case abi::HostcallOp::kPanic: {
            static const char message[] = "kiln-proc: guest kernel panic\n";
            write_all(2, message, sizeof(message) - 1);
            host::exit_group(abi::kExitGuestCrash);
        }
        case abi::HostcallOp::kReady: return announce_ready(call.arg0, call.arg1);
        case abi::HostcallOp::kBootTimestamp: return 0;
    }
    return -38;  // ENOSYS
}

constinit uint64_t host_fs_base = ~0ull;  // the tender's TLS until the first change

constexpr uint64_t kMinimumHostAddress = 0x10000;      // vm.mmap_min_addr's default
constexpr uint64_t kHostUserEnd = 0x00007ffffffff000;  // TASK_SIZE on x86-64 with 4-level paging

}  // namespace

const abi::ProcHandoff& handoff() { return the_handoff; }

void forget_fs_base() { host_fs_base = ~0ull; }

// Checks kiln-proc's handoff and takes it over; the message names what does not match.
void take_handoff(uint64_t handoff_phys, bool resume) {
    const auto& h = *static_cast<const abi::ProcHandoff*>(mm::phys_to_virt(handoff_phys));
    if (h.magic != abi::kProcHandoffMagic || h.version != abi::kProcHandoffVersion ||
        ((h.flags & abi::kProcResume) != 0) != resume) {
        static const char message[] = "kiln: not started by a matching kiln-proc (bad handoff)\n";
        write_all(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
    the_handoff = h;
}

// Everything kiln-proc left in the process outside the kernel's 4 GiB window (its own code, heap
// and stack, the vDSO) goes: the application gets the whole low half but that window, with its
// usual addresses (a static binary at 0x400000, its stack near the top). In the window: the
// instance's memory, the initrd above it.
void release_host_address_space() {
    const uint64_t window_end = abi::kProcMemoryBase + mm::kDirectMapSize;
    host_syscall(host::kMunmap, kMinimumHostAddress, static_cast<long>(abi::kProcMemoryBase - kMinimumHostAddress), 0,
                 0, 0, 0);
    host_syscall(host::kMunmap, static_cast<long>(window_end), static_cast<long>(kHostUserEnd - window_end), 0, 0, 0,
                 0);
}

// From here on, only kiln-proc's allowlist reaches the host (its list: proc/sandbox.cpp). The
// kernel loads it itself so that its set-up calls (rt_sigaction, sigaltstack, timer_create, prctl)
// need not be on it; kiln-proc set no_new_privs, which lets an unprivileged process load it.
void enter_sandbox() {
    constexpr long kSeccomp = 317, kSetModeFilter = 1;
    const uint32_t length = the_handoff.filter_instructions;
    if (length == 0 || length > abi::kProcFilterMaxInstructions) {
        static const char message[] = "kiln: proc: no seccomp allowlist from kiln-proc; refusing to run unconfined\n";
        write_all(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
    struct {
        uint16_t length;
        void* filter;
    } program{static_cast<uint16_t>(length), mm::phys_to_virt(abi::kProcFilterPhys)};
    if (host_syscall(kSeccomp, kSetModeFilter, 0, reinterpret_cast<long>(&program), 0, 0, 0) != 0) {
        static const char message[] = "kiln: proc: the host refused kiln-proc's seccomp allowlist\n";
        write_all(2, message, sizeof(message) - 1);
        host::exit_group(abi::kExitVmmError);
    }
}

}  // namespace kiln::proc

namespace kiln::platform {

using namespace kiln::proc;

void ProcBackend::irq_disable() { proc::disable_interrupts(); }
void ProcBackend::irq_enable() { proc::enable_interrupts(); }
bool ProcBackend::irq_enabled() const { return proc::interrupts_enabled(); }
void ProcBackend::wait_for_interrupt() { proc::wait_for_interrupt(); }

uint64_t ProcBackend::read_msr(uint32_t msr) { panic("proc: no MSR {:#x} in a process", msr); }

void ProcBackend::write_msr(uint32_t msr, uint64_t value) {
    // The SYSCALL entry: on proc, the application's system calls reach the kernel through the
    // host's Syscall User Dispatch instead (interrupts.cpp), so these have nothing to program.
    if (msr == kMsrStar || msr == kMsrLstar || msr == kMsrFmask) return;
    panic("proc: no MSR {:#x} in a process (writing {:#x})", msr, value);
}

uint64_t ProcBackend::fault_address() { return proc::current_fault_address(); }

void ProcBackend::out8(uint16_t port, uint8_t value) {
    if (port == kSerialData) {
        const char c = static_cast<char>(value);
        proc::write_all(proc::handoff().console_fd, &c, 1);
    }
    // Other ports (the PIT, the serial port's set-up) have no device here, as on kiln-vmm.
}

void ProcBackend::out32(uint16_t port, uint32_t value) {
    if (port == abi::kHostcallPort) {
        if (value % 8 != 0 || value + sizeof(abi::Hostcall) > proc::handoff().memory_size) return;
        auto& call = *static_cast<abi::Hostcall*>(mm::phys_to_virt(value));
        call.result = proc::hostcall(call);
    } else if (port == kQemuDebugExitPort) {
        proc::host::exit_group(static_cast<int>(value & 0xff));
    }
}

uint8_t ProcBackend::in8(uint16_t port) {
    constexpr uint8_t kTransmitterIdle = 0x60;
    return port == kSerialLineStatus ? kTransmitterIdle : 0xff;
}

// The host kernel owns CR4 and XCR0: the application gets the host's XCR0, whatever it asks for.
uint64_t ProcBackend::enable_user_features(bool xsave, uint64_t, bool) {
    if (!xsave) return 0;
    uint32_t lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Switches between the application's threads and the kernel's own (which need no FS) would set
// the same base again and again: only a change goes to the host. Nothing else moves the host's FS.
void ProcBackend::set_fs_base(uint64_t base) {
    using proc::host_fs_base;
    if (base == host_fs_base) return;
    host_fs_base = base;
    host_syscall(proc::host::kArchPrctl, proc::kArchSetFs, static_cast<long>(base), 0, 0, 0, 0);
}

namespace {
long host_mmap(uint64_t va, uint64_t length, uint32_t prot, long flags, int fd, uint64_t offset) {
    return host_syscall(proc::host::kMmap, static_cast<long>(va), static_cast<long>(length), prot, flags, fd,
                        static_cast<long>(offset));
}
}  // namespace

// MAP_SHARED of the memfd: the page the kernel allocated is the page the application sees.
// MAP_POPULATE sets the host's page table entries now: the page exists already (the kernel
// wrote it), and the application's next access would otherwise fault once more to find it.
// A page of the initrd itself (a read-only file page the application uses in place, see
// mm::AddressSpace::borrowable_page) is mapped from the initrd's file, MAP_PRIVATE as the kernel's
// own view of it is.
void ProcBackend::user_pages_mapped(uint64_t va, uint64_t phys, uint64_t length, uint32_t prot) {
    constexpr long kMapShared = 0x01, kMapPrivate = 0x02, kMapFixed = 0x10, kMapPopulate = 0x8000;
    const abi::ProcHandoff& h = proc::handoff();
    const bool in_initrd = h.initrd_fd >= 0 && phys >= h.initrd_phys && phys - h.initrd_phys < h.initrd_size;
    // The initrd's pages are left for the host to fault in from its page cache (a host fault
    // around them maps 16 at once, and costs no signal); the memory's are populated now, as the
    // kernel maps them when they are about to be used.
    const long result = in_initrd
                            ? host_mmap(va, length, prot, kMapPrivate | kMapFixed, h.initrd_fd, phys - h.initrd_phys)
                            : host_mmap(va, length, prot, kMapShared | kMapFixed | kMapPopulate, h.memory_fd, phys);
    if (result != static_cast<long>(va)) panic("proc: mapping the application's page {:#x}: error {}", va, -result);
}

void ProcBackend::user_pages_protected(uint64_t start, uint64_t end, uint32_t prot) {
    const long result =
        host_syscall(proc::host::kMprotect, static_cast<long>(start), static_cast<long>(end - start), prot, 0, 0, 0);
    if (result != 0 && result != -12 /* ENOMEM: not mapped in the host yet */)
        panic("proc: protecting the application's pages {:#x}: error {}", start, -result);
}

void ProcBackend::user_range_unmapped(uint64_t start, uint64_t end) {
    host_syscall(proc::host::kMunmap, static_cast<long>(start), static_cast<long>(end - start), 0, 0, 0, 0);
}

bool ProcBackend::kernel_range_in_user_half(uint64_t& start, uint64_t& end) const {
    start = abi::kProcMemoryBase;
    end = abi::kProcMemoryBase + mm::kDirectMapSize;
    return true;
}

void ProcBackend::timer_init(uint64_t tsc_khz) { proc::timer_init(tsc_khz); }
void ProcBackend::timer_arm(uint64_t deadline_tsc) { proc::timer_arm(deadline_tsc); }
void ProcBackend::timer_disarm() { proc::timer_disarm(); }

}  // namespace kiln::platform

// Called by kiln_proc_entry (entry.S) on the boot stack.
extern "C" [[noreturn]] void kiln_proc_start(uint64_t start_info_phys, uint64_t handoff_phys) {
    using namespace kiln;
    proc::take_handoff(handoff_phys, false);
    proc::release_host_address_space();
    proc::install_signal_handlers();
    proc::enter_sandbox();
    kiln_start(static_cast<uint32_t>(start_info_phys), KILN_BOOT_PLATFORM_PROC);
}

// Called by kiln_proc_entry (entry.S) on its resume stack, in a new process whose memory is a
// snapshot's: the host is set up as for a boot, then the kernel goes on where it parked.
extern "C" [[noreturn]] void kiln_proc_resume(uint64_t handoff_phys) {
    using namespace kiln;
    proc::take_handoff(handoff_phys, true);
    proc::release_host_address_space();
    proc::install_signal_handlers();
    proc::enter_sandbox();
    proc::continue_parked_kernel();
}
