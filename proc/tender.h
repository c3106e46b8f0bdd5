// kiln-proc: the tender that runs the Kiln kernel's proc build as a Linux process.
//
// Two processes, as Solo5's spt tender and Firecracker's jailer divide the work:
// - the supervisor (this process) loads the kernel and initrd into the instance's memory, a
//   memfd, exactly as kiln-vmm loads guest RAM, then forks the instance and waits for it: the
//   watchdog (--timeout), SIGTERM and SIGINT, the exit status;
// - the instance (its child) maps the memfd at the address the kernel is linked for and jumps
//   into it. From then on the child is the Kiln kernel and its application; it dies with the
//   supervisor (PR_SET_PDEATHSIG), so killing the pid that was started ends the whole instance.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "boot/elf_image.h"
#include "host/unique_fd.h"
#include "kvm/guest_memory.h"
#include "net/tap.h"
#include "options.h"
#include "sandbox.h"
#include "util/mapped_file.h"

namespace kiln::proc {

class Tender {
  public:
    // Loads everything; throws VmmError naming what is wrong (a bad kernel, initrd or flag).
    explicit Tender(const vmm::Options& options);
    // Runs the instance to its end; returns kiln-proc's exit status (the application's, or one
    // of abi/kiln/hostcall.h's own).
    int run();

  private:
    [[noreturn]] void enter_instance(pid_t supervisor) const;
    void open_tap(const vmm::NetOptions& net);
    InstanceFds instance_fds() const;
    void map_files(uint8_t* base) const;
    int supervise(pid_t instance) const;

    vmm::Options options_;
    vmm::MappedFile kernel_file_;
    vmm::MappedFile initrd_file_;
    // Mapped into the instance rather than copied (the page cache shares them between
    // instances): the kernel's read-only segments, and the initrd at layout::kInitrdMapped.
    UniqueFd kernel_fd_;
    UniqueFd initrd_fd_;
    bool initrd_mapped_ = false;
    std::optional<vmm::ElfImage> kernel_;
    std::unique_ptr<vmm::GuestMemory> memory_;
    std::optional<vmm::Tap> tap_;  // --net: the instance's network card
    UniqueFd console_file_;
    int console_fd_ = 1;
    uint64_t start_info_ = 0;
    Identity identity_{};
};

// The proc kernel kiln-proc runs without --kernel: kiln-proc.elf beside the binary, or in the
// build tree's kernel/ beside bin/.
std::string default_kernel_path();

}  // namespace kiln::proc
