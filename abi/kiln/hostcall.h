// The control port: how the Kiln kernel calls kiln-vmm.
//
// A call is one 32-bit `out` to KILN_HOSTCALL_PORT whose value is the guest-physical address of a
// `kiln_hostcall` (below 4 GiB, 8-byte aligned). kiln-vmm reads the struct, acts, writes `result`
// back, and resumes the vCPU. Every call is an exit to user space (~25 us on PVM), so none belongs
// on a hot path: the console is buffered per line, timestamps are opt-in.
//
// This header is shared by the freestanding kernel and the host, so it is plain C-compatible C++.
#pragma once

#include <stdint.h>

namespace kiln::abi {

inline constexpr uint16_t kHostcallPort = 0x0510;

enum class HostcallOp : uint32_t {
    kExit = 1,           // arg0 = status (0..255); the VMM exits with it
    kConsoleWrite = 2,   // arg0 = guest-physical address, arg1 = length in bytes
    kReady = 3,          // arg0 = protocol (6 = TCP, 17 = UDP), arg1 = port; the app listens
    kBootTimestamp = 4,  // arg0 = BootStage, arg1 = guest TSC at that stage
    kPanic = 5,          // the kernel died; it printed why. The VMM dumps the vCPU and fails.
};

enum class BootStage : uint32_t {
    kEntry = 1,     // first instruction of the kernel
    kNative = 2,    // platform ready (on PVM: running natively)
    kMain = 3,      // kernel main reached, devices up
    kAppStart = 4,  // about to enter the application
};

struct Hostcall {
    uint32_t op;     // HostcallOp
    int32_t result;  // 0 on success, a negative errno from the VMM otherwise
    uint64_t arg0;
    uint64_t arg1;
    uint64_t arg2;
};
static_assert(sizeof(Hostcall) == 32);

// Limits the VMM enforces on guest-supplied values.
inline constexpr uint64_t kMaxConsoleWrite = 64 * 1024;

// Exit statuses of kiln-vmm that do not come from the guest. A guest's own status (0..255) passes
// through unchanged, so these overlap with what an application could return: they are documented
// conventions (the same ones `timeout` and `docker` use), not an out-of-band channel.
inline constexpr int kExitTimeout = 124;     // the watchdog ended a guest that ran too long
inline constexpr int kExitVmmError = 125;    // bad arguments, bad image, no usable KVM
inline constexpr int kExitGuestCrash = 126;  // triple fault, emulation failure, panic

}  // namespace kiln::abi
