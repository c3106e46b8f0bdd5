// The application's Linux processes: the first (pid 1, the program named on the command line)
// and those it starts with vfork, fork and execve, each with its threads, descriptors and signal
// handlers, all in the kernel's single address space. docs/architecture.md, "Processes", says
// how a fork works without a second address space.
#pragma once

#include <stdint.h>

#include "fs/file.h"
#include "fs/node.h"
#include "lib/cmdline.h"
#include "lib/string_class.h"
#include "lib/vector.h"
#include "linux/thread_info.h"
#include "mm/address_space.h"
#include "sched/thread.h"

namespace kiln::linux {

inline constexpr int kInitPid = 1;
inline constexpr int kSignalCount = 64;

// One program image's memory: its mappings (tagged with `owner`) and its break. A vfork or fork
// child runs in its parent's until it calls execve or exits.
struct Memory {
    mm::Owner owner = 0;
    int users = 1;
    mm::Break brk;
};

struct SignalAction {
    uint64_t handler = 0;  // SIG_DFL 0, SIG_IGN 1
    uint64_t flags = 0;
    uint64_t restorer = 0;
    uint64_t mask = 0;
};

// Who the process is (as setuid and friends leave it). Kiln keeps and reports them, and new files
// belong to fsuid:fsgid; files are not checked against them (the root file system is the
// instance's own).
struct CredentialIds {
    uint32_t uid = 0, euid = 0, suid = 0, fsuid = 0;
    uint32_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
};

struct Credentials : CredentialIds {
    Vector<uint32_t> groups;

    // A child's copy of its parent's (fork, clone): false if the groups could not be allocated.
    bool copy_from(const Credentials& other) {
        static_cast<CredentialIds&>(*this) = other;
        groups.clear();
        if (!groups.reserve(other.groups.size())) return false;
        for (uint32_t g : other.groups)
            if (!groups.push_back(g)) return false;
        return true;
    }
};

struct Process {
    int pid = 0;
    int pgid = 0;
    int sid = 0;
    Process* parent = nullptr;
    Vector<Process*> children;
    bool exiting = false;            // exit_group or a fatal signal: its threads end on their way out
    bool zombie = false;             // every thread gone: kept for the parent's wait
    int wait_status = 0;             // as wait4 reports it
    sched::WaitQueue child_changed;  // a child ended: the parent's wait4 sleeps here

    Memory* memory = nullptr;
    // Set in a vfork or fork child while it runs in the memory of `lender`, which waits.
    Process* lender = nullptr;
    bool lending = false;                    // a child runs in this process's memory; this one waits
    mm::MemorySnapshot* snapshot = nullptr;  // fork: the lent memory as it was, put back after
    mm::Break snapshot_break;
    sched::WaitQueue memory_returned;
    bool frozen = false;  // a fork child runs in this memory: the other threads hold still
    sched::WaitQueue thawed;

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

// The calling thread's process.
Process& process();
ThreadInfo* current_info();
Process* find_process(int pid);
Vector<Process*>& all_processes();

// Ends the calling thread; the process with it if it was the last (`status` is exit's).
[[noreturn]] void exit_thread(int status);
// Ends the calling process (exit_group, or a fatal signal): `wait_status` as wait4 reports it.
[[noreturn]] void exit_process(int wait_status);
// On the way back to user mode: ends the thread if its process is ending, or holds it while a
// fork child runs in its memory.
void hold_at_user_return(ThreadInfo& info);

// The calling process gives back the memory it runs in (execve, exit): a vfork or fork parent
// gets its own back (a fork's as it was) and runs on; an image nobody else uses is unmapped.
void leave_memory(Process& p);
Memory* new_memory();
// A zombie's last trace: out of its parent's children and the table, and freed.
void reap_process(Process& p);

// Loads the application named after `--` on the command line and starts its main thread. On
// failure prints why and returns false (the caller ends the VM with kExitCannotStart).
bool start_application(const Cmdline& cmdline);

// Ends the application and the VM with `status` (pid 1 ended).
[[noreturn]] void exit_application(int status);

// Exit status when the application cannot start: not found, not a static x86-64 ELF, bad initrd.
inline constexpr int kExitCannotStart = 127;

}  // namespace kiln::linux
