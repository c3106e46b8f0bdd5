// How kiln-proc hands the machine to the Kiln kernel's `proc` build (kernel/platform/proc).
//
// The instance's memory is one memfd, mapped by kiln-proc at kProcMemoryBase in the process that
// will run the kernel (the TSC frequency and the wall clock come on the command line, as from
// kiln-vmm); "physical" address P is the byte at kProcMemoryBase + P, and offset P of
// the memfd. kiln-proc loads the kernel and the PVH start_info exactly as kiln-vmm does, writes a
// ProcHandoff, and jumps to the address in the kernel's Kiln proc-entry note with
//   rdi = start_info's physical address, rsi = the ProcHandoff's physical address,
// on a stack of its own (the kernel moves to its boot stack at once). From then on the kernel
// makes its own host system calls: only on the file descriptors named here.
//
// Shared by the freestanding kernel and the host, so it is plain C-compatible C++.
#pragma once

#include <stdint.h>

namespace kiln::abi {

inline constexpr uint64_t kProcMemoryBase = 0x100000000000;  // 16 TiB (KILN_KERNEL_BASE on proc)
inline constexpr uint32_t kKilnElfNoteProcEntry = 0x4b02;    // note name "Kiln", desc: u64 virtual entry
inline constexpr uint64_t kProcHandoffPhys = 0x5000;         // a free page below 1 MiB (vmm/boot/layout.h)
inline constexpr uint64_t kProcFilterPhys = 0x8000;          // the seccomp program, up to a page
inline constexpr uint32_t kProcFilterMaxInstructions = 4096 / 8;
inline constexpr uint32_t kProcHandoffMagic = 0x636f7270;  // "proc"
inline constexpr uint32_t kProcHandoffVersion = 6;
inline constexpr uint32_t kProcMaxVolumes = 16;

struct ProcHandoff {
    uint32_t magic;        // kProcHandoffMagic
    uint32_t version;      // kProcHandoffVersion
    int32_t memory_fd;     // the memfd behind all of the instance's memory
    int32_t console_fd;    // where the console goes (the kernel's writes are whole lines)
    uint64_t memory_size;  // bytes of the memfd
    // kiln-proc's seccomp allowlist (struct sock_filter[filter_instructions] at kProcFilterPhys),
    // which the kernel loads once its own set-up is done, before the application's first
    // instruction.
    uint32_t filter_instructions;
    // The network card: a tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking, O_ASYNC with
    // SIGIO to the instance), or -1 for none; and the card's MAC address.
    int32_t net_fd;
    uint8_t mac[6];
    uint8_t pad[2];  // 0
    // The initrd's file, mapped read-only at initrd_phys (above the memory): the application's
    // read-only file pages are mapped from it too (MAP_PRIVATE), or -1 if the initrd was copied
    // into the memory instead.
    int32_t initrd_fd;
    // The channel to kiln-proc's supervisor (a SOCK_SEQPACKET socket of ProcControlMessages,
    // non-blocking, O_ASYNC with SIGUSR1 to the instance), or -1 for none.
    int32_t control_fd;
    uint64_t initrd_phys;
    uint64_t initrd_size;
    // kProcResume: no boot; the kernel continues where its snapshot parked it (the handoff was
    // written over the snapshot's own, with this process's descriptors). kProcHold, with it: the
    // restored kernel rebuilds its host state, says kParked and waits for kResume before it runs
    // anything else or announces itself (`--paused`: a wake prepared before its request).
    uint32_t flags;
    // With kProcHold: a FIFO's read end (non-blocking) whose first byte resumes the held kernel as
    // kResume does (`--resume-fifo`: a wake's write goes straight to the instance, not through
    // the supervisor's socket); -1 for none.
    int32_t resume_fd;
    uint64_t reserved[3];  // 0
    // The volumes (--volume, in the flags' order), the kernel's block devices: volume_count of
    // them (up to kProcMaxVolumes), each a regular file kiln-proc opened (O_RDWR, or O_RDONLY when
    // read-only) and flock'ed, its size in bytes (a multiple of 512). The kernel reads and writes
    // them with pread64, pwrite64 and fdatasync on exactly these descriptors; a restored instance
    // finds them here at this process's numbers.
    uint32_t volume_count;                      // offset 96
    uint8_t volume_read_only[kProcMaxVolumes];  // offset 100: 1 = read-only
    uint32_t pad3;                              // offset 116: 0
    int32_t volume_fds[kProcMaxVolumes];        // offset 120
    uint64_t volume_bytes[kProcMaxVolumes];     // offset 184
};
static_assert(sizeof(ProcHandoff) == 312);
inline constexpr uint32_t kProcResume = 1;
inline constexpr uint32_t kProcHold = 2;

// What kiln-proc's supervisor and the kernel tell each other over control_fd. The supervisor
// serves the control socket (pause, resume, snapshot...) outside the sandbox; the kernel parks
// itself at a safe point when asked, so that the whole instance is its memory.
enum class ProcControl : uint32_t {
    kPark = 1,     // supervisor: stop at a safe point, everything saved in memory, no host signal
                   // handled until resumed; answered with kParked
    kResume = 2,   // supervisor: go on (after kParked); answered with kResumed
    kParked = 3,   // kernel
    kResumed = 4,  // kernel: running again (also the first word of a restored instance)
    kReady = 5,    // kernel: the application listens: arg0 = protocol (6 tcp, 17 udp), arg1 = port
};
struct ProcControlMessage {
    ProcControl kind;
    uint32_t arg0;
    uint64_t arg1;
};
static_assert(sizeof(ProcControlMessage) == 16);

}  // namespace kiln::abi
