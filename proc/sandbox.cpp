#include "sandbox.h"

#include <asm/prctl.h>
#include <fcntl.h>
#include <grp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <ctime>
#include <memory>

#include "host/unique_fd.h"
#include "util/error.h"

namespace kiln::proc {
namespace {

using Context = std::unique_ptr<std::remove_pointer_t<scmp_filter_ctx>, decltype(&seccomp_release)>;

void allow(scmp_filter_ctx ctx, int syscall, std::initializer_list<scmp_arg_cmp> args = {}) {
    const int error = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, syscall, static_cast<unsigned>(args.size()),
                                             args.size() > 0 ? args.begin() : nullptr);
    if (error != 0) throw vmm::VmmError("seccomp: a rule for system call " + std::to_string(syscall) + " was refused");
}

// libseccomp's SCMP_A0()..SCMP_A5() are C99 compound literals: the same comparisons in C++.
scmp_arg_cmp arg_equals(unsigned arg, scmp_datum_t value) { return {arg, SCMP_CMP_EQ, value, 0}; }
scmp_arg_cmp arg_masked_equals(unsigned arg, scmp_datum_t mask, scmp_datum_t value) {
    return {arg, SCMP_CMP_MASKED_EQ, mask, value};
}

}  // namespace

// Each call with the reason the kernel needs it (docs/architecture.md repeats the list).
std::vector<sock_filter> instance_filter(const InstanceFds& fds) {
    // The filter is only exported and the kernel loads it, so libseccomp need not probe which
    // features the host has (nine system calls at each start): it is told the level whose
    // action this filter uses (SECCOMP_RET_KILL_PROCESS, Linux 4.14).
    static const bool api_set = seccomp_api_set(3) == 0;
    if (!api_set) throw vmm::VmmError("seccomp_api_set(3) failed");
    Context ctx(seccomp_init(SCMP_ACT_KILL_PROCESS), &seccomp_release);
    if (!ctx) throw vmm::VmmError("seccomp_init failed");
    scmp_filter_ctx c = ctx.get();
    const auto fd = [](int n) { return static_cast<scmp_datum_t>(n); };
    allow(c, SCMP_SYS(write), {arg_equals(0, fd(fds.console))});    // console lines
    allow(c, SCMP_SYS(write), {arg_equals(0, fd(STDERR_FILENO))});  // a panic's one line, ready lines
    if (fds.net >= 0) {
        allow(c, SCMP_SYS(read), {arg_equals(0, fd(fds.net))});   // frames received
        allow(c, SCMP_SYS(write), {arg_equals(0, fd(fds.net))});  // frames sent
    }
    for (size_t i = 0; i < fds.volumes.size(); ++i) {
        const int volume = fds.volumes[i];
        if (volume < 0) continue;
        allow(c, SCMP_SYS(pread64), {arg_equals(0, fd(volume))});  // a volume's blocks read
        if (!fds.volume_read_only[i]) {
            allow(c, SCMP_SYS(pwrite64), {arg_equals(0, fd(volume))});   // a volume's blocks written
            allow(c, SCMP_SYS(fdatasync), {arg_equals(0, fd(volume))});  // a volume's flush
        }
    }
    allow(c, SCMP_SYS(read), {arg_equals(0, fd(fds.control))});   // the supervisor's requests
    allow(c, SCMP_SYS(write), {arg_equals(0, fd(fds.control))});  // answers, ready
    // The application's pages: the instance's memfd, shared, at the address the kernel chose.
    allow(c, SCMP_SYS(mmap), {arg_equals(3, MAP_SHARED | MAP_FIXED | MAP_POPULATE), arg_equals(4, fd(fds.memory))});
    if (fds.initrd >= 0)  // the application's read-only file pages, from the initrd's file
        allow(c, SCMP_SYS(mmap),
              {arg_masked_equals(2, PROT_WRITE, 0), arg_equals(3, MAP_PRIVATE | MAP_FIXED),
               arg_equals(4, fd(fds.initrd))});
    allow(c, SCMP_SYS(mprotect));        // mprotect of the application's pages
    allow(c, SCMP_SYS(munmap));          // munmap, MADV_DONTNEED, mremap of them
    allow(c, SCMP_SYS(rt_sigreturn));    // the end of every host signal (system calls, faults, timer)
    allow(c, SCMP_SYS(rt_sigprocmask));  // idle: device signals blocked between the check and ppoll; parked
    allow(c, SCMP_SYS(ppoll));           // idle: the one blocking wait; parked: on the channel alone
    allow(c, SCMP_SYS(timer_settime));   // the timer (its only timer, made before the filter)
    allow(c, SCMP_SYS(clock_gettime), {arg_equals(0, CLOCK_MONOTONIC)});  // the timer's deadlines
    allow(c, SCMP_SYS(arch_prctl), {arg_equals(0, ARCH_SET_FS)});         // the application's TLS
    allow(c, SCMP_SYS(exit_group));                                       // the end
    // libseccomp writes the program to a file descriptor; a memfd gives it back.
    UniqueFd out(::memfd_create("kiln-proc-filter", MFD_CLOEXEC));
    if (!out.valid()) throw vmm::system_error("memfd_create for the seccomp filter");
    if (seccomp_export_bpf(c, out.get()) != 0) throw vmm::VmmError("seccomp_export_bpf failed");
    const off_t size = ::lseek(out.get(), 0, SEEK_END);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
        throw vmm::VmmError("seccomp_export_bpf wrote no whole program");
    std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(out.get(), program.data(), static_cast<size_t>(size), 0) != size)
        throw vmm::system_error("reading the seccomp filter back");
    return program;
}

Identity instance_identity(pid_t supervisor) {
    constexpr uint32_t kBase = 0x4b000000;  // "K": above any distribution's range, below 2^31
    const auto id = kBase + static_cast<uint32_t>(supervisor);
    return {id, id};
}

std::string confine(const Identity& identity, const InstanceFds& fds) {
    // Only the instance's own descriptors cross into it: close the gaps between them.
    std::vector<int> keep = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, fds.memory, fds.console,
                             fds.net,      fds.initrd,    fds.control,   fds.resume};
    keep.insert(keep.end(), fds.volumes.begin(), fds.volumes.end());
    std::sort(keep.begin(), keep.end());
    int previous = -1;
    for (int fd : keep) {
        if (fd > previous + 1 &&
            ::syscall(SYS_close_range, static_cast<unsigned>(previous + 1), static_cast<unsigned>(fd - 1), 0) != 0)
            return "close_range";
        previous = std::max(previous, fd);
    }
    if (::syscall(SYS_close_range, static_cast<unsigned>(previous + 1), ~0u, 0) != 0) return "close_range";
    const int highest = previous;

    if (::geteuid() == 0) {
        if (::setgroups(0, nullptr) != 0) return "setgroups";
        if (::setresgid(identity.gid, identity.gid, identity.gid) != 0) return "setresgid";
        if (::setresuid(identity.uid, identity.uid, identity.uid) != 0) return "setresuid";
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "PR_SET_NO_NEW_PRIVS";
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return "PR_SET_DUMPABLE";
    const auto limit = [](int resource, rlim_t value) {
        const rlimit r{value, value};
        return ::setrlimit(resource, &r) == 0;
    };
    if (!limit(RLIMIT_NOFILE, static_cast<rlim_t>(highest) + 1)) return "RLIMIT_NOFILE";
    if (!limit(RLIMIT_NPROC, 0) || !limit(RLIMIT_CORE, 0) || !limit(RLIMIT_MEMLOCK, 0) || !limit(RLIMIT_MSGQUEUE, 0))
        return "rlimits";
    return {};
}

}  // namespace kiln::proc
