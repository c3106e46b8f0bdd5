// The control port (abi/kiln/hostcall.h): the kernel's calls into kiln-vmm. Each call is one
// 32-bit `out` of the guest-physical address of a kiln::abi::Hostcall. Everything the guest hands
// over (the block's address, the console buffer's address and length, the op) is checked here;
// a bad call gets a negative errno in `result`, never a crash.
#pragma once

#include <cstdint>

#include "devices/console_output.h"
#include "devices/io_bus.h"
#include "kiln/hostcall.h"
#include "kvm/guest_memory.h"

namespace kiln::vmm {

class ControlPortListener {
  public:
    virtual ~ControlPortListener() = default;
    virtual void guest_exited(int status) = 0;
    virtual void guest_panicked() = 0;
    virtual void guest_ready(uint32_t protocol, uint32_t port) = 0;
    virtual void guest_boot_stage(abi::BootStage stage, uint64_t guest_tsc) = 0;
};

class ControlPort final : public PioDevice {
  public:
    ControlPort(GuestMemory& memory, ConsoleOutput& console, ControlPortListener& listener)
        : memory_(memory), console_(console), listener_(listener) {}

    void read(uint16_t offset, std::span<uint8_t> data) override;
    void write(uint16_t offset, std::span<const uint8_t> data) override;

    uint64_t calls() const { return calls_; }
    uint64_t rejected_calls() const { return rejected_; }

  private:
    int32_t handle(const abi::Hostcall& call);

    GuestMemory& memory_;
    ConsoleOutput& console_;
    ControlPortListener& listener_;
    uint64_t calls_ = 0;
    uint64_t rejected_ = 0;
};

}  // namespace kiln::vmm
