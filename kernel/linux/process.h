// The application: one Linux process (pid 1) with its threads, descriptors and signal handlers,
// in the kernel's single address space.
#pragma once

#include <stdint.h>

#include "fs/file.h"
#include "fs/node.h"
#include "lib/cmdline.h"
#include "lib/string_class.h"
#include "lib/vector.h"
#include "linux/thread_info.h"

namespace kiln::linux {

inline constexpr int kPid = 1;
inline constexpr int kSignalCount = 64;

struct SignalAction {
    uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1
    uint64_t flags = 0;
    uint64_t restorer = 0;
    uint64_t mask = 0;
};

// Who the process is (as setuid and friends leave it). Kiln keeps and reports them; files are
// not checked against them (the root file system is the instance's own).
struct Credentials {
    uint32_t uid = 0, euid = 0, suid = 0, fsuid = 0;
    uint32_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
    Vector<uint32_t> groups;
};

struct Process {
    fs::FdTable fds;
    RefPtr<fs::Node> cwd;
    String cwd_path;
    String exe_path;
    SignalAction actions[kSignalCount + 1];
    uint64_t pending = 0;  // signals sent to the process as a whole
    Vector<ThreadInfo*> threads;
    uint32_t umask = 022;
    Credentials credentials;
    int nice = 0;    // getpriority/setpriority; the scheduler is round robin whatever it is
    int policy = 0;  // SCHED_OTHER, SCHED_BATCH or SCHED_IDLE: all scheduled alike
    char hostname[65] = "kiln";
    char domainname[65] = "(none)";
    bool strace = false;
};

Process& process();
ThreadInfo* current_info();

// Loads the application named after `--` on the command line and starts its main thread. On
// failure prints why and returns false (the caller ends the VM with kExitCannotStart).
bool start_application(const Cmdline& cmdline);

// Ends the application and the VM with `status`.
[[noreturn]] void exit_application(int status);

// Exit status when the application cannot start: not found, not a static x86-64 ELF, bad initrd.
inline constexpr int kExitCannotStart = 127;

}  // namespace kiln::linux
