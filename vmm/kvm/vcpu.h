// One virtual CPU: its KVM file descriptor, the shared kvm_run page, and its statistics.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/unique_fd.h"
#include "kvm/kvm.h"
#include "kvm/vm.h"

namespace kiln::vmm {

class Vcpu {
  public:
    Vcpu(const Vm& vm, int index);
    ~Vcpu();
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    int index() const { return index_; }
    int fd() const { return fd_.get(); }
    kvm_run& run_state() { return *run_; }

    // CPUID from KVM's supported table, with this vCPU's APIC ID filled in.
    void set_cpuid(const Kvm::CpuidTable& supported);

    kvm_regs regs() const;
    void set_regs(const kvm_regs& regs);
    kvm_sregs sregs() const;
    void set_sregs(const kvm_sregs& sregs);

    // The TSC frequency KVM runs this vCPU at, or 0 if KVM does not say.
    uint64_t tsc_khz() const;
    // Makes the guest's TSC tick at `khz` (TSC scaling); false where the host cannot.
    bool set_tsc_khz(uint64_t khz);

    // One KVM_RUN. Returns false if it was interrupted by a signal (see request_exit()).
    bool run();
    // Makes the next or current KVM_RUN return at once; safe from a signal handler.
    void request_exit() { run_->immediate_exit = 1; }

    // Everything KVM keeps about this vCPU, for snapshots: registers, segments, FPU/XSAVE, XCRs,
    // MSRs, local APIC, pending events, MP state, debug registers. The vCPU must not be running.
    std::vector<uint8_t> save_state(const Kvm& kvm) const;
    // Puts a saved state back, in the order KVM needs. `tsc_advance` is added to the TSC (the
    // time the snapshot spent on disk). Throws VmmError naming what failed.
    void restore_state(const std::vector<uint8_t>& state, uint64_t tsc_advance);

    // Registers, segments and control registers, for crash reports.
    std::string describe_state() const;

    // The vCPU's binary statistics (KVM_GET_STATS_FD), e.g. "exits", "insn_emulation". Safe while
    // the vCPU runs: the statistics descriptor is opened up front, and reading it takes no vCPU lock
    // (any vCPU ioctl would wait for KVM_RUN to return, which a halted guest may not do for long).
    std::map<std::string, uint64_t> statistics() const;

  private:
    int index_;
    UniqueFd fd_;
    UniqueFd stats_;
    kvm_run* run_ = nullptr;
    size_t run_size_ = 0;
};

}  // namespace kiln::vmm
