#include "instance.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "boot/layout.h"
#include "kiln/hostcall.h"
#include "kiln/proc.h"
#include "util/error.h"

namespace kiln::proc {

namespace {

constexpr uint32_t kPlanMagic = 0x4e4c504b;   // "KPLN"
constexpr size_t kMaxResidentExtents = 4096;  // beyond them, pages fault as they are used
constexpr size_t kMaxReadOnlyRanges = 64;
constexpr int kAboveInstanceFds = 512;  // received descriptors wait here before their move

// The plan on the wire: this, then the resident extents, then the read-only ranges.
struct PlanHeader {
    uint32_t magic;
    int32_t supervisor;
    uint64_t memory_size, entry, start_info, initrd_size;
    uint32_t uid, gid;
    int32_t memory, console, net, initrd, control, resume, read_only;  // the numbers each goes to; -1: none
    int32_t volumes[abi::kProcMaxVolumes];                             // -1 past the last
    uint32_t resident_count, read_only_count;
    cpu_set_t affinity;
};

constexpr size_t kDescriptors = 8 + abi::kProcMaxVolumes;

// The plan's descriptors, in the order they travel; -1 for those it has not. Standard error too:
// an instance process forked ahead holds the waiting tender's (/dev/null), not the orders'.
std::array<int, kDescriptors> descriptor_numbers(const InstancePlan& plan) {
    std::array<int, kDescriptors> numbers{plan.fds.memory,  plan.fds.console, plan.fds.net,      plan.fds.initrd,
                                          plan.fds.control, plan.fds.resume,  plan.read_only_fd, STDERR_FILENO};
    std::copy(plan.fds.volumes.begin(), plan.fds.volumes.end(), numbers.begin() + 8);
    return numbers;
}

[[noreturn]] void instance_failed(const char* what) {
    std::fprintf(stderr, "kiln-proc: instance: %s: %s\n", what, std::strerror(errno));
    _exit(abi::kExitVmmError);
}

// The kernel's read-only segments over the memory (text R+X, read-only data R; never W+X), and
// the initrd above it, from their files.
void map_files(const InstancePlan& plan, uint8_t* base) {
    for (const ReadOnlyRange& range : plan.read_only)
        if (::mmap(base + range.phys, range.length, static_cast<int>(range.prot), MAP_PRIVATE | MAP_FIXED,
                   plan.read_only_fd, static_cast<off_t>(range.file_offset)) == MAP_FAILED)
            instance_failed("mapping the kernel's segments");
    if (plan.initrd_size != 0 && ::mmap(base + vmm::layout::kInitrdMapped, plan.initrd_size, PROT_READ,
                                        MAP_PRIVATE | MAP_FIXED_NOREPLACE, plan.fds.initrd, 0) == MAP_FAILED)
        instance_failed("mapping the initrd");
}

// Nothing here may throw: a failure ends the process with kExitVmmError.
[[noreturn]] void become_instance(const InstancePlan& plan) {
    // The device signals (the timer's, the tap's, the channel's) stay blocked until the kernel has
    // its handlers: a frame that reaches the tap before would otherwise end the process (SIGIO's
    // default action). The kernel unblocks them (interrupts.cpp).
    sigset_t devices;
    sigemptyset(&devices);
    for (int signal : {SIGALRM, SIGIO, SIGUSR1}) sigaddset(&devices, signal);
    sigprocmask(SIG_SETMASK, &devices, nullptr);
    // The instance's memory at the address the kernel is linked for, and the files mapped over
    // and above it, before confine() closes their descriptors.
    auto* base =
        static_cast<uint8_t*>(::mmap(reinterpret_cast<void*>(abi::kProcMemoryBase), plan.memory_size,
                                     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, plan.fds.memory, 0));
    if (base != reinterpret_cast<uint8_t*>(abi::kProcMemoryBase)) instance_failed("mapping the instance's memory");
    // A page fault costs a few microseconds here (a trip through the hypervisor on a VM host);
    // one madvise maps a whole range. Best effort: without it (Linux < 5.14) the pages fault.
    for (const auto& [start, length] : plan.resident) (void)::madvise(base + start, length, MADV_POPULATE_WRITE);
    map_files(plan, base);
    // The tap raises no signal: the kernel looks at it when it goes idle (its ppoll waits on the
    // tap) and, while busy, on a timer tick (kernel/platform/proc/interrupts.cpp). A SIGIO for
    // each frame cost a host signal delivery per frame, a fifth of the instance's time under load.
    if (plan.fds.net >= 0 && ::fcntl(plan.fds.net, F_SETFL, O_NONBLOCK) != 0) instance_failed("O_NONBLOCK on the tap");
    // And each message from the supervisor a SIGUSR1: the control channel's interrupt.
    const int channel = plan.fds.control;
    if (::fcntl(channel, F_SETOWN, ::getpid()) != 0 || ::fcntl(channel, F_SETSIG, SIGUSR1) != 0 ||
        ::fcntl(channel, F_SETFL, O_NONBLOCK | O_ASYNC) != 0)
        instance_failed("O_ASYNC on the control channel");

    // Woken on the supervisor's CPU (InstanceProcess::start); from here the scheduler places it.
    if (::sched_setaffinity(0, sizeof(plan.affinity), &plan.affinity) != 0) instance_failed("sched_setaffinity");

    const std::string failed = confine(plan.identity, plan.fds);
    if (!failed.empty()) instance_failed(failed.c_str());
    // After the change of uid, which clears it.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) instance_failed("PR_SET_PDEATHSIG");
    if (::getppid() != plan.supervisor) _exit(abi::kExitVmmError);  // the supervisor is already gone

    // The host kernel keeps three pointers into this thread's glibc data, which the kernel is
    // about to unmap: without them it would write the exit's tid and robust futexes into the
    // instance's memory, and fail every signal delivery on the rseq area.
    if (__rseq_size > 0) {
        auto* area = reinterpret_cast<char*>(__builtin_thread_pointer()) + __rseq_offset;
        // glibc registers sizeof(struct rseq) (32 bytes); __rseq_size may name fewer.
        if (::syscall(SYS_rseq, area, sizeof(struct rseq), RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0 &&
            ::syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER, RSEQ_SIG) != 0)
            instance_failed("unregistering rseq");
    }
    ::syscall(SYS_set_robust_list, nullptr, 0);
    ::syscall(SYS_set_tid_address, nullptr);

    asm volatile("jmp *%2" : : "D"(plan.start_info), "S"(abi::kProcHandoffPhys), "r"(plan.entry) : "memory");
    __builtin_unreachable();
}

// Puts the received descriptors at the numbers the plan names: first all above those numbers,
// so that moving one never closes another not yet moved.
void install_descriptors(const InstancePlan& plan, const int* received, size_t count) {
    std::array<int, kDescriptors> parked{};
    for (size_t i = 0; i < count; ++i) {
        parked[i] = ::fcntl(received[i], F_DUPFD_CLOEXEC, kAboveInstanceFds);
        if (parked[i] < 0) instance_failed("moving a descriptor of the plan");
        ::close(received[i]);
    }
    size_t next = 0;
    for (int number : descriptor_numbers(plan)) {
        if (number < 0) continue;
        if (::dup2(parked[next], number) < 0) instance_failed("placing a descriptor of the plan");
        ::close(parked[next++]);
    }
}

// In the instance process, from its fork on: waits for the plan, then becomes the instance. The
// supervisor's end closing first (it failed to load, or ended) ends this process quietly.
[[noreturn]] void await_plan(int socket, pid_t supervisor) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != supervisor) _exit(abi::kExitVmmError);
    ::prctl(PR_SET_NAME, "kiln-instance");  // in ps and top, beside its supervisor (kiln-proc)
    std::vector<char> bytes(sizeof(PlanHeader) + kMaxResidentExtents * 2 * sizeof(uint64_t) +
                            kMaxReadOnlyRanges * sizeof(ReadOnlyRange));
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kDescriptors)];
    iovec io{bytes.data(), bytes.size()};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t n;
    do n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n == 0) _exit(0);  // never started
    if (n < static_cast<ssize_t>(sizeof(PlanHeader))) instance_failed("receiving the plan");
    ::close(socket);

    PlanHeader header;
    std::memcpy(&header, bytes.data(), sizeof(header));
    const size_t expected =
        sizeof(header) + header.resident_count * 2 * sizeof(uint64_t) + header.read_only_count * sizeof(ReadOnlyRange);
    if (header.magic != kPlanMagic || header.resident_count > kMaxResidentExtents ||
        header.read_only_count > kMaxReadOnlyRanges || static_cast<size_t>(n) != expected)
        instance_failed("a malformed plan");
    InstancePlan plan;
    plan.supervisor = header.supervisor;
    plan.memory_size = header.memory_size;
    plan.entry = header.entry;
    plan.start_info = header.start_info;
    plan.initrd_size = header.initrd_size;
    plan.identity = {header.uid, header.gid};
    plan.fds = {header.memory, header.console, header.net, header.initrd, header.control, header.resume, {}, {}};
    std::copy(std::begin(header.volumes), std::end(header.volumes), plan.fds.volumes.begin());
    plan.read_only_fd = header.read_only;
    plan.affinity = header.affinity;
    const char* at = bytes.data() + sizeof(header);
    for (uint32_t i = 0; i < header.resident_count; ++i, at += 2 * sizeof(uint64_t)) {
        uint64_t extent[2];
        std::memcpy(extent, at, sizeof(extent));
        plan.resident.emplace_back(extent[0], extent[1]);
    }
    plan.read_only.resize(header.read_only_count);
    std::memcpy(plan.read_only.data(), at, plan.read_only.size() * sizeof(ReadOnlyRange));

    size_t wanted = 0;
    for (int number : descriptor_numbers(plan)) wanted += number >= 0 ? 1 : 0;
    const cmsghdr* rights = CMSG_FIRSTHDR(&message);
    if (rights == nullptr || rights->cmsg_type != SCM_RIGHTS || rights->cmsg_len != CMSG_LEN(sizeof(int) * wanted) ||
        (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
        instance_failed("the plan's descriptors");
    int received[kDescriptors];
    std::memcpy(received, CMSG_DATA(rights), sizeof(int) * wanted);
    install_descriptors(plan, received, wanted);
    become_instance(plan);
}

// Limits the waiting instance process to this CPU, so that the plan wakes it here: woken on an
// idle CPU instead (the scheduler's usual choice, its last one), it waits for that CPU to leave
// its halt, which on a VM host is a trip through the hypervisor (0.2 to 3.8 ms measured here).
// Best effort: it only costs time. The instance restores the plan's affinity first thing.
void wake_here(pid_t waiting) {
    const int cpu = ::sched_getcpu();
    if (cpu < 0) return;
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(static_cast<size_t>(cpu), &here);
    (void)::sched_setaffinity(waiting, sizeof(here), &here);
}

}  // namespace

InstanceProcess::InstanceProcess() {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
        throw vmm::system_error("the instance process's plan channel");
    socket_.reset(ends[0]);
    UniqueFd theirs(ends[1]);
    const pid_t supervisor = ::getpid();  // before the fork: see become_instance's check
    pid_ = ::fork();
    if (pid_ < 0) throw vmm::system_error("fork");
    if (pid_ == 0) {
        // Only the standard streams and the plan's channel: what the instance keeps comes with the
        // plan, and the supervisor's end closing must be this end's end of file.
        const auto socket = static_cast<unsigned>(ends[1]);
        if (socket > 3) ::syscall(SYS_close_range, 3u, socket - 1, 0u);
        ::syscall(SYS_close_range, socket + 1, ~0u, 0u);
        await_plan(ends[1], supervisor);
    }
}

InstanceProcess::~InstanceProcess() {
    if (pid_ <= 0 || started_) return;
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
}

void InstanceProcess::start(const InstancePlan& plan) {
    PlanHeader header{};
    header.magic = kPlanMagic;
    header.supervisor = plan.supervisor;
    header.memory_size = plan.memory_size;
    header.entry = plan.entry;
    header.start_info = plan.start_info;
    header.initrd_size = plan.initrd_size;
    header.uid = plan.identity.uid;
    header.gid = plan.identity.gid;
    header.memory = plan.fds.memory;
    header.console = plan.fds.console;
    header.net = plan.fds.net;
    header.initrd = plan.fds.initrd;
    header.control = plan.fds.control;
    header.resume = plan.fds.resume;
    header.read_only = plan.read_only_fd;
    header.affinity = plan.affinity;
    std::copy(plan.fds.volumes.begin(), plan.fds.volumes.end(), std::begin(header.volumes));
    const size_t resident = std::min(plan.resident.size(), kMaxResidentExtents);
    if (plan.read_only.size() > kMaxReadOnlyRanges)
        throw vmm::VmmError("the instance has " + std::to_string(plan.read_only.size()) +
                            " read-only ranges, more than " + std::to_string(kMaxReadOnlyRanges));
    header.resident_count = static_cast<uint32_t>(resident);
    header.read_only_count = static_cast<uint32_t>(plan.read_only.size());
    std::vector<char> bytes(sizeof(header));
    std::memcpy(bytes.data(), &header, sizeof(header));
    for (size_t i = 0; i < resident; ++i) {
        const uint64_t extent[2] = {plan.resident[i].first, plan.resident[i].second};
        const auto* raw = reinterpret_cast<const char*>(extent);
        bytes.insert(bytes.end(), raw, raw + sizeof(extent));
    }
    const auto* ranges = reinterpret_cast<const char*>(plan.read_only.data());
    bytes.insert(bytes.end(), ranges, ranges + plan.read_only.size() * sizeof(ReadOnlyRange));

    int descriptors[kDescriptors];
    size_t count = 0;
    for (int number : descriptor_numbers(plan))
        if (number >= 0) descriptors[count++] = number;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kDescriptors)] = {};
    iovec io{bytes.data(), bytes.size()};
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(rights), descriptors, sizeof(int) * count);
    wake_here(pid_);
    if (::sendmsg(socket_.get(), &message, MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size()))
        throw vmm::system_error("sending the instance its plan");
    started_ = true;
    socket_.reset();
}

}  // namespace kiln::proc
