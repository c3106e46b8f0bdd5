#include "drivers/hostcall.h"

#include "arch/x86_64/cpu.h"
#include "mm/layout.h"
#include "platform/platform.h"

namespace kiln::hostcall {
namespace {

// One call block, in the kernel image (below 4 GiB physical, as the 32-bit `out` requires).
constinit abi::Hostcall call_block;

int32_t call(abi::HostcallOp op, uint64_t arg0 = 0, uint64_t arg1 = 0, uint64_t arg2 = 0) {
    platform::IrqGuard guard;
    call_block = {static_cast<uint32_t>(op), 0, arg0, arg1, arg2};
    asm volatile("" ::: "memory");
    platform::current().out32(abi::kHostcallPort, static_cast<uint32_t>(mm::virt_to_phys(&call_block)));
    asm volatile("" ::: "memory");
    return call_block.result;
}

}  // namespace

void console_write(const char* data, size_t size) {
    call(abi::HostcallOp::kConsoleWrite, mm::virt_to_phys(data), size);
}

void boot_timestamp(abi::BootStage stage) {
    call(abi::HostcallOp::kBootTimestamp, static_cast<uint64_t>(stage), cpu::rdtsc());
}

void ready(uint32_t protocol, uint16_t port) { call(abi::HostcallOp::kReady, protocol, port); }

void exit(int status) {
    call(abi::HostcallOp::kExit, static_cast<uint64_t>(status));
    for (;;) cpu::pause();  // kiln-vmm never resumes the vCPU after an exit call
}

void panic() {
    call(abi::HostcallOp::kPanic);
    for (;;) cpu::pause();
}

}  // namespace kiln::hostcall
