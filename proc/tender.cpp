#include "tender.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/rseq.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "boot/cmdline.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "host_clock.h"
#include "kiln/hostcall.h"
#include "kiln/proc.h"
#include "util/error.h"

namespace kiln::proc {

using vmm::system_error;
using vmm::VmmError;

namespace {

constexpr uint64_t kPage = 4096;

}  // namespace

std::string default_kernel_path() {
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    const auto dir = error ? std::filesystem::path(".") : self.parent_path();
    for (const auto& candidate : {dir / "kiln-proc.elf", dir / ".." / "kernel" / "kiln-proc.elf"})
        if (std::filesystem::exists(candidate, error)) return candidate.lexically_normal().string();
    throw VmmError("no --kernel given and no kiln-proc.elf beside " + dir.string() + " or in " +
                   (dir / ".." / "kernel").lexically_normal().string());
}

Tender::Tender(const vmm::Options& options, std::unique_ptr<InstanceProcess> instance_process)
    : options_(options), instance_process_(std::move(instance_process)) {
    milestones_.started = Clock::now();
    if (options.nets.size() > 1)
        throw VmmError("--net: kiln-proc gives an instance one network card, not " +
                       std::to_string(options.nets.size()));
    if (!options.console.empty()) {
        console_file_.reset(::open(options.console.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!console_file_.valid()) throw system_error("--console " + options.console);
        console_fd_ = console_file_.get();
    }
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0)
        throw system_error("the instance's control channel");
    channel_.reset(ends[0]);
    instance_channel_.reset(ends[1]);
    // The instance process forks now, unless it was forked ahead: its start-up runs beside the
    // loading below.
    if (!instance_process_) instance_process_ = std::make_unique<InstanceProcess>();

    if (options.restore.empty())
        load_kernel();
    else
        load_snapshot(options.restore);
    milestones_.loaded = Clock::now();

    if (!options.resume_fifo.empty()) make_resume_fifo();
    const std::vector<sock_filter> filter = instance_filter(instance_fds());
    if (filter.size() > abi::kProcFilterMaxInstructions)
        throw VmmError("the seccomp filter has " + std::to_string(filter.size()) + " instructions, more than " +
                       std::to_string(abi::kProcFilterMaxInstructions));
    memory_->write(abi::kProcFilterPhys,
                   {reinterpret_cast<const uint8_t*>(filter.data()), filter.size() * sizeof(sock_filter)});
    const Identity own = instance_identity(::getpid());
    identity_ = {options.uid.value_or(own.uid), options.gid.value_or(own.gid)};
    parked_ = options.paused;  // held by the kernel until a resume request (abi::kProcHold)
    write_handoff(options.restore.empty() ? 0 : abi::kProcResume | (options.paused ? abi::kProcHold : 0),
                  filter.size());
    milestones_.confined = Clock::now();
}

// The loop first: a request being served (a stop, whose kill ended the instance) is answered
// before the socket goes.
Tender::~Tender() {
    if (loop_) loop_->stop();
    control_.reset();
    if (resume_fifo_.valid()) ::unlink(options_.resume_fifo.c_str());
}

// Made anew (a stale one of an earlier tender goes) and opened for reading before anyone may
// write: the kernel polls it while held (kernel/platform/proc/control.cpp). Only its owner,
// root for kilnd, may open it to write.
void Tender::make_resume_fifo() {
    const std::string& path = options_.resume_fifo;
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) != 0) throw system_error("--resume-fifo " + path);
    resume_fifo_.reset(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!resume_fifo_.valid()) throw system_error("--resume-fifo " + path);
}

// A boot: the kernel's writable segments and the initrd loaded as kiln-vmm loads them, its
// read-only segments mapped from its file.
void Tender::load_kernel() {
    const std::string kernel_path = options_.kernel.empty() ? default_kernel_path() : options_.kernel;
    read_only_source_ = vmm::MappedFile(kernel_path, "--kernel");
    read_only_fd_.reset(::open(kernel_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!read_only_fd_.valid()) throw system_error("--kernel " + kernel_path);
    kernel_ = vmm::ElfImage::parse(read_only_source_.bytes(), "--kernel " + kernel_path);
    if (!kernel_->proc_entry())
        throw VmmError("--kernel " + kernel_path +
                       ": not the proc build of the Kiln kernel (no Kiln proc entry note); "
                       "kiln-vmm runs this one");
    entry_ = *kernel_->proc_entry();
    for (const auto& segment : kernel_->segments()) {
        if (segment.writable) continue;
        if (segment.phys_addr % kPage != segment.file_offset % kPage || segment.mem_size != segment.file_size)
            throw VmmError("--kernel " + kernel_path + ": a read-only segment that cannot be mapped from the file");
        const uint64_t start = segment.phys_addr & ~(kPage - 1);
        const uint64_t end = (segment.phys_addr + segment.mem_size + kPage - 1) & ~(kPage - 1);
        read_only_.push_back({start, end - start, segment.file_offset & ~(kPage - 1),
                              static_cast<uint32_t>(PROT_READ | (segment.executable ? PROT_EXEC : 0)), 0});
    }
    if (!options_.initrd.empty()) {
        initrd_file_ = vmm::MappedFile(options_.initrd, "--initrd");
        initrd_fd_.reset(::open(options_.initrd.c_str(), O_RDONLY | O_CLOEXEC));
        if (!initrd_fd_.valid()) throw system_error("--initrd " + options_.initrd);
    }
    initrd_mapped_ = initrd_file_.bytes().size() > 0 && initrd_file_.bytes().size() <= vmm::layout::kInitrdMappedMax &&
                     options_.memory_bytes <= vmm::layout::kInitrdMapped;
    vmm::check_memory_fits(*kernel_, initrd_mapped_ ? 0 : initrd_file_.bytes().size(), options_.memory_bytes);

    if (!options_.nets.empty()) {
        mac_ = options_.nets.front().mac;
        open_tap(options_.nets.front());
    }
    open_volumes();
    memory_ = std::make_unique<vmm::GuestMemory>(options_.memory_bytes);
    const HostClock clock = read_host_clock();
    tsc_khz_ = clock.tsc_khz;
    const std::vector<std::string> params = {"kiln.vmm=kiln-proc", "kiln.epoch_ns=" + std::to_string(clock.epoch_ns),
                                             "kiln.tsc_khz=" + std::to_string(clock.tsc_khz)};
    vmm::BootPayload payload{vmm::compose_cmdline(options_.cmdline, params), initrd_file_.bytes(),
                             initrd_mapped_ ? vmm::layout::kInitrdMapped : 0};
    payload.read_only_segments_mapped = true;
    start_info_ = vmm::load_kernel(*memory_, *kernel_, payload);
}

void Tender::write_handoff(uint32_t flags, size_t filter_instructions) {
    abi::ProcHandoff handoff{};
    handoff.magic = abi::kProcHandoffMagic;
    handoff.version = abi::kProcHandoffVersion;
    handoff.memory_fd = memory_->fd();
    handoff.console_fd = console_fd_;
    handoff.memory_size = memory_->size();
    handoff.filter_instructions = static_cast<uint32_t>(filter_instructions);
    handoff.net_fd = tap_ ? tap_->fd() : -1;
    std::memcpy(handoff.mac, mac_.data(), sizeof(handoff.mac));
    handoff.initrd_fd = initrd_mapped_ ? initrd_fd_.get() : -1;
    handoff.control_fd = instance_channel_.get();
    handoff.initrd_phys = vmm::layout::kInitrdMapped;
    handoff.initrd_size = initrd_mapped_ ? initrd_file_.bytes().size() : 0;
    handoff.flags = flags;
    handoff.resume_fd = resume_fifo_.valid() ? resume_fifo_.get() : -1;
    handoff.volume_count = static_cast<uint32_t>(volumes_.size());
    for (size_t i = 0; i < abi::kProcMaxVolumes; ++i) {
        const bool present = i < volumes_.size();
        handoff.volume_fds[i] = present ? volumes_[i].fd.get() : -1;
        handoff.volume_bytes[i] = present ? volumes_[i].bytes : 0;
        handoff.volume_read_only[i] = present && volumes_[i].read_only;
    }
    memory_->write_object(abi::kProcHandoffPhys, handoff);
}

// The tap, with the offloads the kernel's card uses: the host fills in checksums for frames it
// sends (TUN_F_CSUM) but never sends a GSO frame bigger than the card's 2 KiB buffers. The faults
// of kiln-vmm's device model are not here: the frames go straight from the kernel to the tap.
void Tender::open_tap(const vmm::NetOptions& net) {
    if (net.faults.active())
        throw VmmError("--net tap=" + net.tap + ": loss, reorder and delay are kiln-vmm's (" + net.faults.describe() +
                       "), not kiln-proc's");
    tap_ = vmm::Tap::open(net.tap);
    tap_->set_offload(TUN_F_CSUM);
}

void Tender::open_volumes() {
    if (options_.volumes.size() > abi::kProcMaxVolumes) throw VmmError("--volume: at most 16 volumes");
    for (const auto& volume : options_.volumes) volumes_.push_back(vmm::open_volume(volume));
}

InstanceFds Tender::instance_fds() const {
    InstanceFds fds{memory_->fd(),
                    console_fd_,
                    tap_ ? tap_->fd() : -1,
                    initrd_mapped_ ? initrd_fd_.get() : -1,
                    instance_channel_.get(),
                    resume_fifo_.valid() ? resume_fifo_.get() : -1,
                    {},
                    {}};
    fds.volumes.fill(-1);
    for (size_t i = 0; i < volumes_.size(); ++i) {
        fds.volumes[i] = volumes_[i].fd.get();
        fds.volume_read_only[i] = volumes_[i].read_only;
    }
    return fds;
}

int Tender::run() {
    // SIGTERM and SIGINT are blocked since main (the supervisor's signalfd takes them); the
    // instance sets its own mask before it starts.
    std::cout.flush();
    std::cerr.flush();
    // A restored instance announces itself at once (control.cpp): only once the bridge forwards.
    if (tap_ && start_info_ == 0 && !tap_->wait_until_running(1000))
        std::cerr << "kiln-proc: --net tap=" << tap_->name() << ": no carrier after 1 s; starting anyway\n";
    find_resident_extents();
    milestones_.forked = Clock::now();
    instance_process_->start(instance_plan());
    instance_channel_.reset();  // the instance's now: a read of the channel sees its end
    return supervise(instance_process_->pid());
}

InstancePlan Tender::instance_plan() const {
    InstancePlan plan;
    plan.supervisor = ::getpid();
    plan.memory_size = memory_->size();
    plan.entry = entry_;
    plan.start_info = start_info_;
    plan.identity = identity_;
    plan.fds = instance_fds();
    plan.read_only_fd = read_only_fd_.get();
    plan.initrd_size = initrd_mapped_ ? initrd_file_.bytes().size() : 0;
    plan.resident = resident_;
    plan.read_only = read_only_;
    if (::sched_getaffinity(0, sizeof(plan.affinity), &plan.affinity) != 0) throw system_error("sched_getaffinity");
    return plan;
}

// The memfd's data, read before the instance starts: the kernel's writable segments and the handoff (a
// boot), or everything the snapshot held (a restore). Capped: beyond it, pages fault as used.
void Tender::find_resident_extents() {
    constexpr uint64_t kMaxResident = 64ull << 20;
    uint64_t total = 0;
    const int fd = memory_->fd();
    off_t at = ::lseek(fd, 0, SEEK_DATA);
    while (at >= 0 && static_cast<uint64_t>(at) < memory_->size() && total < kMaxResident) {
        off_t end = ::lseek(fd, at, SEEK_HOLE);
        if (end < 0) end = static_cast<off_t>(memory_->size());
        const uint64_t length = std::min<uint64_t>(static_cast<uint64_t>(end - at), kMaxResident - total);
        resident_.emplace_back(static_cast<uint64_t>(at), length);
        total += length;
        at = ::lseek(fd, end, SEEK_DATA);
    }
}

}  // namespace kiln::proc
