// kiln-vmm's command line.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boot/boot_protocol.h"
#include "net/fault_model.h"

namespace kiln::vmm {

struct NetOptions {
    std::string tap;
    std::array<uint8_t, 6> mac{};
    FaultSettings faults;  // none unless loss, reorder or delay is given
};

// "tap=NAME[,mac=52:54:00:12:34:56][,loss=PERCENT][,reorder=PERCENT][,delay=MS][,seed=N]"; a
// missing MAC gets a random locally administered one, a missing seed a random one (kiln-vmm
// prints it when faults are on, so a failing run can be replayed). PERCENT is 0 to 100 (like 1 or
// 0.5, a trailing % allowed), MS milliseconds (like 1 or 0.25) up to 10 s.
NetOptions parse_net_option(const std::string& text);

// A volume: a host file (an ext4 image) the instance sees as a block device, in the order of the
// --volume flags. "path=FILE[,ro]"; FILE must exist, be a regular file, and hold whole 512-byte
// sectors.
struct VolumeOptions {
    std::string path;
    bool read_only = false;
};
inline constexpr size_t kMaxVolumes = 16;
VolumeOptions parse_volume_option(const std::string& text);

struct Options {
    std::string kernel;
    std::string initrd;
    std::string cmdline;
    uint64_t memory_bytes = 64ull << 20;
    std::string console;  // empty: stdout
    BootMode boot = BootMode::kAuto;
    std::optional<std::chrono::milliseconds> timeout;
    bool stats = false;
    std::string control;  // --control PATH: the JSON control socket
    std::string restore;  // --restore DIR: resume a snapshot instead of booting
    // --paused: everything set up, nothing run until the control socket's `resume` (a restore made
    // ready before the request that needs it; the announcement and `ready` come at the resume).
    bool paused = false;
    // --resume-fifo PATH (kiln-proc, with --paused): a FIFO made there; a writer's byte resumes the
    // instance as the control socket's `resume` does, without the supervisor's round trip (kilnd's
    // wakes).
    std::string resume_fifo;
    // --status-file PATH: the exit status is written here (whole, by rename) as kiln-vmm ends, for
    // a supervisor that is not its parent (kilnd after a restart) and so cannot wait for it.
    std::string status_file;
    std::vector<NetOptions> nets;
    std::vector<VolumeOptions> volumes;  // --volume, at most kMaxVolumes
    // kiln-proc only: the instance's uid and gid when kiln-proc runs as root (default: one of
    // its own per instance, proc/sandbox.h).
    std::optional<uint32_t> uid, gid;
};

// "64M", "512m", "1G", "65536K", "64" (MiB). Throws VmmError naming `flag`.
uint64_t parse_memory_size(const std::string& text, const std::string& flag);

// Which monitor's command line: kiln-vmm's, or kiln-proc's (the same flags, `--kernel` optional
// since kiln-proc finds the proc kernel built beside it, no `--boot`).
enum class Monitor { kVmm, kProc };

// Parses argv; on --help or a usage error, prints and exits (0 or abi::kExitVmmError).
Options parse_options(int argc, char** argv, Monitor monitor = Monitor::kVmm);

// Parses a typical command line and drops it: a tender waiting for its orders does this ahead,
// so that its real parse (~0.4 ms the first time, ~0.04 ms after) is not on a wake's path.
void warm_up_options(Monitor monitor);

}  // namespace kiln::vmm
