// kiln-proc: the tender that runs the Kiln kernel's proc build as a Linux process.
//
// Two processes, as Solo5's spt tender and Firecracker's jailer divide the work:
// - the supervisor (this process) forks the instance process first (instance.h), then loads the
//   kernel and initrd into the instance's memory, a memfd, exactly as kiln-vmm loads guest RAM
//   (or a snapshot's memory, for --restore), sends the instance its plan and watches it: the watchdog (--timeout),
//   SIGTERM and SIGINT, the exit status, and the control socket (--control), whose pause and snapshot it does with the
//   kernel's help over a channel of their own (supervisor.cpp, snapshot.cpp);
// - the instance (its child) maps the memfd at the address the kernel is linked for and jumps
//   into it. From then on the child is the Kiln kernel and its application; it dies with the
//   supervisor (PR_SET_PDEATHSIG), so killing the pid that was started ends the whole instance.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "boot/elf_image.h"
#include "control/control_socket.h"
#include "event_loop.h"
#include "host/unique_fd.h"
#include "instance.h"
#include "kiln/proc.h"
#include "kvm/guest_memory.h"
#include "net/tap.h"
#include "options.h"
#include "sandbox.h"
#include "util/mapped_file.h"
#include "util/volume_file.h"

namespace kiln::proc {

class Tender {
  public:
    // Loads everything; throws VmmError naming what is wrong (a bad kernel, initrd, snapshot or
    // flag).
    // `instance_process`: one forked ahead (main.cpp), or null to fork it now.
    explicit Tender(const vmm::Options& options, std::unique_ptr<InstanceProcess> instance_process = nullptr);
    ~Tender();
    // Runs the instance to its end; returns kiln-proc's exit status (the application's, or one
    // of abi/kiln/hostcall.h's own).
    int run();

  private:
    // Loading (tender.cpp, snapshot.cpp).
    void load_kernel();
    void load_snapshot(const std::string& dir);
    void write_handoff(uint32_t flags, size_t filter_instructions);
    void open_tap(const vmm::NetOptions& net);
    // --volume: each file opened and locked, in order (volume_file.h).
    void open_volumes();
    // --resume-fifo: the FIFO made at its path, this process's read end kept for the instance.
    void make_resume_fifo();
    InstanceFds instance_fds() const;

    // The instance (tender.cpp, instance.cpp).
    void find_resident_extents();
    InstancePlan instance_plan() const;

    // The supervisor (supervisor.cpp).
    int supervise(pid_t instance);
    nlohmann::json handle_control(const nlohmann::json& request);
    void on_channel_readable();
    // Reads what the kernel said, if anything; false once the instance's end closed the channel.
    bool read_kernel_message();
    void on_kernel_message(const abi::ProcControlMessage& message);
    // Sends `request` and waits for `reply`, handling what else the kernel says meanwhile;
    // false (with `error`) if the kernel does not answer in time.
    bool exchange(abi::ProcControl request, abi::ProcControl reply, std::string& error);
    void guest_ready(uint32_t protocol, uint32_t port);
    nlohmann::json stats_json() const;

    // Snapshots (snapshot.cpp): returns the microseconds it took.
    uint64_t snapshot(const std::string& dir);

    vmm::Options options_;
    vmm::MappedFile initrd_file_;
    // Mapped into the instance rather than copied (the page cache shares them between
    // instances): the read-only ranges from read_only_fd_ (the kernel's file, or a snapshot's
    // memory), and the initrd at layout::kInitrdMapped.
    std::vector<ReadOnlyRange> read_only_;
    UniqueFd read_only_fd_;
    vmm::MappedFile read_only_source_;  // the same file's bytes, which a snapshot copies
    UniqueFd initrd_fd_;
    bool initrd_mapped_ = false;
    std::optional<vmm::ElfImage> kernel_;
    uint64_t entry_ = 0;  // the kernel's proc entry point
    std::unique_ptr<vmm::GuestMemory> memory_;
    std::optional<vmm::Tap> tap_;  // --net: the instance's network card
    std::array<uint8_t, 6> mac_{};
    std::vector<vmm::VolumeFile> volumes_;  // --volume, in order: the kernel's block devices
    UniqueFd console_file_;
    int console_fd_ = 1;
    uint64_t start_info_ = 0;  // 0: a restore
    // The ranges of the memfd that hold data (what was loaded or restored), which the instance
    // maps in one go rather than by a fault per page.
    std::vector<std::pair<uint64_t, uint64_t>> resident_;
    uint64_t tsc_khz_ = 0;
    Identity identity_{};

    // The channel to the kernel (abi/kiln/proc.h ProcControlMessage): the supervisor's end,
    // and the instance's until the fork.
    UniqueFd channel_;
    UniqueFd instance_channel_;
    UniqueFd resume_fifo_;  // --resume-fifo's read end, or none
    pid_t instance_ = -1;
    // Forked first, before the loading; it waits for its plan (instance.h).
    std::unique_ptr<InstanceProcess> instance_process_;
    std::unique_ptr<vmm::EventLoop> loop_;
    std::unique_ptr<vmm::ControlSocket> control_;
    bool parked_ = false;                                            // the loop thread's
    bool resumed_once_ = false;                                      // the loop thread's
    std::vector<std::pair<uint32_t, uint32_t>> listeners_;           // (protocol, port)
    std::vector<std::pair<uint32_t, uint32_t>> restored_listeners_;  // ready again once resumed
    std::atomic<bool> stop_requested_{false};
    std::atomic<uint64_t> snapshots_{0};

    // --stats: when each step of the start ended (the running one: the first ready or resumed).
    using Clock = std::chrono::steady_clock;
    struct Milestones {
        Clock::time_point started, loaded, confined, forked, running;
    } milestones_;
    void print_stats() const;
};

// The proc kernel kiln-proc runs without --kernel: kiln-proc.elf beside the binary, or in the
// build tree's kernel/ beside bin/.
std::string default_kernel_path();

}  // namespace kiln::proc
