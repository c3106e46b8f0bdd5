// New processes in one address space: vfork, fork, execve, wait4 and waitid.
//
// A vfork child runs in its parent's memory, as on Linux, until it calls execve or exits; the
// parent waits meanwhile. A fork child does the same with one more step, which makes it a fork:
// the parent's memory (its mappings and the pages it has written) is copied aside first and put
// back when the child leaves it, so whatever the child changed before execve (a shell's
// variables and redirections, a heap grown or freed) is undone for the parent, as if the child
// had had a copy of its own. What this cannot give is a parent and a fork child running side by
// side before the child's execve: the parent waits, as after vfork. docs/architecture.md
// ("Processes") compares this with the other answers (OSv, Unikraft, gVisor).
//
// After execve each program has its own image at addresses of its own (position-independent
// programs go wherever there is room; a fixed-address one needs its addresses free).
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/layout.h"
#include "console/console.h"
#include "core/errno.h"
#include "fs/devices.h"
#include "fs/vfs.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/at_paths.h"
#include "linux/program_loader.h"
#include "linux/signal.h"
#include "linux/spawn.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/address_space.h"
#include "platform/platform.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kExitSignalMask = 0xff;
// Linux's limits on what execve takes: MAX_ARG_STRLEN and, here, a total of a quarter of the stack.
constexpr size_t kMaxArgLength = 128 * 1024;
constexpr size_t kMaxArgBytes = 2 * 1024 * 1024;

Process* new_child(Process& parent) {
    auto* child = new Process;
    child->pgid = parent.pgid;
    child->sid = parent.sid;
    child->parent = &parent;
    child->cwd = parent.cwd;
    child->cwd_path = parent.cwd_path;
    child->exe_path = parent.exe_path;
    for (int i = 0; i <= kSignalCount; ++i) child->actions[i] = parent.actions[i];
    child->umask = parent.umask;
    const bool ok = child->credentials.copy_from(parent.credentials);
    child->nice = parent.nice;
    child->policy = parent.policy;
    memcpy(child->hostname, parent.hostname, sizeof(child->hostname));
    memcpy(child->domainname, parent.domainname, sizeof(child->domainname));
    child->strace = parent.strace;
    if (!ok || !child->fds.copy_from(parent.fds)) {
        delete child;
        return nullptr;
    }
    return child;
}

// Undoes new_child and the bookkeeping after it, for a spawn that failed half way.
void discard_child(Process& parent, Process* child) {
    if (child->memory) {
        --child->memory->users;
        child->memory = nullptr;
    }
    delete parent.snapshot;
    parent.snapshot = nullptr;
    delete child;
}

}  // namespace

int64_t spawn_process(const CloneRequest& r, const arch::InterruptFrame& parent_frame) {
    // A process in the caller's memory (vfork, posix_spawn) or in a copy of it (fork). Shared
    // descriptor tables, handlers or file-system contexts between processes are not supported.
    constexpr uint64_t kSupported = kExitSignalMask | kCloneVm | kCloneVfork | kCloneSettls | kCloneParentSettid |
                                    kCloneChildCleartid | kCloneChildSettid;
    if (r.flags & ~kSupported) return -EINVAL;
    Process& parent = process();
    const bool fork = !(r.flags & kCloneVm);
    Process* child = new_child(parent);
    if (child == nullptr) return -ENOMEM;
    child->memory = parent.memory;
    ++child->memory->users;
    if (fork) {
        parent.snapshot = new mm::MemorySnapshot;
        parent.snapshot_break = parent.memory->brk;
        if (!mm::address_space().take_snapshot(parent.memory->owner, *parent.snapshot)) {
            discard_child(parent, child);
            return -ENOMEM;
        }
    }
    ThreadInfo* self = current_info();
    auto* info = new ThreadInfo;
    info->process = child;
    info->signal_mask = self->signal_mask;
    info->altstack_sp = self->altstack_sp;
    info->altstack_size = self->altstack_size;
    info->altstack_flags = self->altstack_flags;
    if (r.flags & kCloneChildCleartid) info->clear_child_tid = r.child_tid;
    if (!child->threads.push_back(info) || !all_processes().reserve(all_processes().size() + 1) ||
        !parent.children.reserve(parent.children.size() + 1)) {
        delete info;
        discard_child(parent, child);
        return -ENOMEM;
    }
    arch::InterruptFrame frame = parent_frame;
    frame.rax = 0;  // the child sees 0
    if (r.stack != 0) frame.rsp = r.stack;
    const uint64_t tls = (r.flags & kCloneSettls) ? r.tls : sched::current().fs_base;
    sched::Thread* thread = sched::spawn_user(frame, info, tls);
    if (thread == nullptr) {
        delete info;
        discard_child(parent, child);
        return -ENOMEM;
    }
    info->thread = thread;
    const int pid = child->pid = thread->tid;
    (void)all_processes().push_back(child);
    (void)parent.children.push_back(child);
    child->lender = &parent;
    parent.lending = true;
    // In the child's memory: after the snapshot, so a fork's parent never sees it.
    if (r.flags & kCloneChildSettid) (void)put_user(r.child_tid, static_cast<uint32_t>(pid));

    // The child runs in this memory until execve or exit; this process waits (its other threads
    // too after a fork: their writes would be undone).
    parent.frozen = fork && parent.threads.size() > 1;
    while (parent.lending) sched::wait(parent.memory_returned, 0, false);
    parent.frozen = false;
    sched::wake(parent.thawed);
    delete parent.snapshot;
    parent.snapshot = nullptr;
    if (r.flags & kCloneParentSettid) (void)put_user(r.parent_tid, static_cast<uint32_t>(pid));
    return pid;
}

namespace {

int64_t sys_fork(SyscallArgs& a) { return spawn_process({17, 0, 0, 0, 0}, *a.frame); }  // SIGCHLD
int64_t sys_vfork(SyscallArgs& a) { return spawn_process({kCloneVm | kCloneVfork | 17, 0, 0, 0, 0}, *a.frame); }

// A NULL-terminated array of strings from the caller's memory.
int64_t copy_strings(uint64_t user_array, Vector<String>& out, size_t& total) {
    if (user_array == 0) return 0;  // Linux takes a null argv or envp as empty
    char* buffer = static_cast<char*>(heap::allocate(kMaxArgLength));
    if (buffer == nullptr) return -ENOMEM;
    int64_t result = 0;
    for (uint64_t i = 0;; ++i) {
        uint64_t pointer;
        if (get_user(pointer, user_array + i * 8) != 0) {
            result = -EFAULT;
            break;
        }
        if (pointer == 0) break;
        const int64_t length = copy_string_from_user(buffer, pointer, kMaxArgLength);
        if (length < 0) {
            result = length == -ENAMETOOLONG ? -E2BIG : length;
            break;
        }
        total += static_cast<size_t>(length) + 1 + 8;
        if (total > kMaxArgBytes) {
            result = -E2BIG;
            break;
        }
        if (!out.push_back(String(StringView(buffer, static_cast<size_t>(length))))) {
            result = -ENOMEM;
            break;
        }
    }
    heap::free(buffer);
    return result;
}

// The calling thread becomes the process's only one, as execve requires: the others end.
void end_other_threads(Process& p) {
    ThreadInfo* self = current_info();
    if (p.threads.size() <= 1) return;
    p.exiting = true;  // they end on their way back to user mode...
    for (ThreadInfo* t : p.threads)
        if (t != self && t->thread) sched::interrupt(*t->thread);
    while (p.threads.size() > 1) sched::yield();
    p.exiting = false;  // ...and this one goes on
}

// The thread starts the new program: registers cleared, as Linux leaves them (glibc's _start
// takes a non-zero RDX for a function to run at exit).
void start_fresh(arch::InterruptFrame& frame, uint64_t entry, uint64_t sp) {
    const uint64_t vector = frame.vector;
    frame = {};
    frame.vector = vector;
    frame.rip = entry;
    frame.rsp = sp;
    frame.cs = KILN_SEL_USER_CS;
    frame.ss = KILN_SEL_USER_DS;
    frame.rflags = 0x202;
    sched::Thread& thread = sched::current();
    thread.fs_base = 0;
    platform::current().set_fs_base(0);
    if (thread.fpu_state) {
        fpu::init_state(thread.fpu_state);
        fpu::restore(thread.fpu_state);
    }
    current_info()->exact_return = true;
}

// The absolute path /proc/self/exe shows for a program named `path` relative to `base` (glibc
// takes its directory for $ORIGIN and insists it starts with '/').
String absolute_path(StringView path, const RefPtr<fs::Node>& base) {
    if (path.starts_with("/")) return String(path);
    char joined[fs::kPathMax];
    const int64_t n = fs::directory_path(base, joined);
    if (n < 0 || static_cast<size_t>(n) + 1 + path.size() >= sizeof(joined)) return String(path);
    size_t length = static_cast<size_t>(n);
    if (length > 1) joined[length++] = '/';
    memcpy(joined + length, path.data(), path.size());
    return String(StringView(joined, length + path.size()));
}

// execve, and execveat: a path relative to `dirfd` (AT_FDCWD: the working directory), or with
// AT_EMPTY_PATH and an empty path the file `dirfd` is open on (fexecve).
int64_t execute(uint64_t dirfd, uint64_t user_path, uint64_t user_argv, uint64_t user_envp, uint64_t flags,
                arch::InterruptFrame& frame) {
    if (flags & ~(kAtSymlinkNoFollow | kAtEmptyPath)) return -EINVAL;
    char path_buffer[fs::kPathMax];
    int64_t length = copy_string_from_user(path_buffer, user_path, sizeof(path_buffer));
    if (length < 0) return length;
    Process& p = process();
    RefPtr<fs::Node> base = p.cwd, node;
    if (length == 0 && (flags & kAtEmptyPath) && static_cast<int>(dirfd) != kAtFdcwd) {
        RefPtr<fs::File> file = p.fds.get(static_cast<int>(dirfd));
        if (!file || !file->node()) return -EBADF;
        node = file->node();  // the program itself, named as Linux names it
        length = static_cast<int64_t>(format_buffer(path_buffer, sizeof(path_buffer), "/dev/fd/{}", dirfd));
    } else if (length > 0 && path_buffer[0] != '/') {
        if (int64_t r = base_dir(dirfd, base); r < 0) return r;
    }
    if (length == 0) return -ENOENT;
    ProgramArgs args;
    size_t total = 0;
    if (int64_t r = copy_strings(user_argv, args.argv, total); r < 0) return r;
    if (int64_t r = copy_strings(user_envp, args.envp, total); r < 0) return r;
    if (args.argv.empty() && !args.argv.push_back(String(StringView("")))) return -ENOMEM;

    // The image being left, if this process is its only user: a fixed-address program may go
    // where it is. A vfork child's memory is its parent's and stays.
    const mm::Owner leaving = p.lender == nullptr && p.memory->users == 1 ? p.memory->owner : mm::kKernelOwned;
    AppImage image;
    LoadError error;
    const String path{StringView(path_buffer, static_cast<size_t>(length))};
    String program;
    if (int64_t r = resolve_program(String(path.view()), base, args, node, image, leaving, program, error); r < 0) {
        // What Linux would answer the same way (no such file, not a program) is the caller's to
        // report; a refusal of Kiln's own (a fixed-address program with its addresses taken) is
        // said on the console too, since ENOMEM alone would not explain it.
        if (error.text[0] != 0 && (p.strace || r == -ENOMEM))
            console::print("kiln: execve: {}\n", StringView(error.text));
        return r;
    }

    // No way back from here: the old image goes, and a failure ends the process.
    end_other_threads(p);
    leave_memory(p);
    p.memory = new_memory();
    mm::address_space().set_owner(p.memory->owner);
    uint64_t entry = 0, sp = 0;
    if (!load_program(program.view(), static_cast<fs::RamFile&>(*node), image, args, false, *p.memory, entry, sp,
                      error)) {
        console::print("kiln: execve: {}\n", StringView(error.text));
        exit_process(kSigSegv);
    }
    p.fds.close_on_exec();
    for (int signo = 1; signo <= kSignalCount; ++signo) {
        SignalAction& action = p.actions[signo];
        if (action.handler > 1) action = {};  // handlers are gone with the code; ignored stays ignored
    }
    ThreadInfo& self = *current_info();
    self.altstack_sp = self.altstack_size = 0;
    self.altstack_flags = 2;  // SS_DISABLE
    self.clear_child_tid = self.robust_list = self.rseq = 0;
    p.exe_path = program.view().starts_with("/") ? move(program) : absolute_path(program.view(), base);
    start_fresh(frame, entry, sp);
    return 0;
}

int64_t sys_execve(SyscallArgs& a) {
    return execute(static_cast<uint64_t>(kAtFdcwd), a.a[0], a.a[1], a.a[2], 0, *a.frame);
}

int64_t sys_execveat(SyscallArgs& a) { return execute(a.a[0], a.a[1], a.a[2], a.a[3], a.a[4], *a.frame); }

// Which children a wait means: pid > 0 that one, 0 the caller's group, -1 any, < -1 group -pid.
bool waited_for(const Process& child, int64_t pid, const Process& self) {
    if (pid > 0) return child.pid == pid;
    if (pid == 0) return child.pgid == self.pgid;
    if (pid == -1) return true;
    return child.pgid == -pid;
}

// Finds an ended child the wait means; `any` tells whether there is any child it means at all.
// Sleeps (interruptibly) unless `nohang`. Returns the child or null (with the errno in `error`).
Process* wait_for_child(int64_t pid, bool nohang, int64_t& error) {
    Process& self = process();
    for (;;) {
        bool any = false;
        for (Process* child : self.children) {
            if (!waited_for(*child, pid, self)) continue;
            any = true;
            if (child->zombie) return child;
        }
        if (!any) {
            error = -ECHILD;
            return nullptr;
        }
        if (nohang) {
            error = 0;
            return nullptr;
        }
        if (sched::wait(self.child_changed, 0, true) == sched::WakeReason::kInterrupted) {
            error = kErestartsys;
            return nullptr;
        }
    }
}

int64_t sys_wait4(SyscallArgs& a) {
    constexpr uint64_t kWnohang = 1;
    constexpr uint64_t kKnownOptions = 1 | 2 | 8 | 0x20000000 | 0x40000000 | 0x80000000ull;
    if (a.a[2] & ~kKnownOptions) return -EINVAL;
    int64_t error = 0;
    Process* child = wait_for_child(static_cast<int32_t>(a.a[0]), a.a[2] & kWnohang, error);
    if (child == nullptr) return error;
    if (a.a[1] != 0 && put_user(a.a[1], static_cast<int32_t>(child->wait_status)) != 0) return -EFAULT;
    if (a.a[3] != 0 && clear_user(a.a[3], 144) != 0) return -EFAULT;  // struct rusage: nothing counted
    const int pid = child->pid;
    reap_process(*child);
    return pid;
}

int64_t sys_waitid(SyscallArgs& a) {
    constexpr uint64_t kPAll = 0, kPPid = 1, kPPgid = 2;
    constexpr uint64_t kWnohang = 1, kWexited = 4, kWnowait = 0x1000000;
    const uint64_t options = a.a[3];
    if (a.a[0] > kPPgid || !(options & kWexited)) return -EINVAL;
    const auto id = static_cast<int32_t>(a.a[1]);
    const int64_t pid = a.a[0] == kPAll ? -1 : a.a[0] == kPPid ? id : (id == 0 ? 0 : -static_cast<int64_t>(id));
    if (a.a[0] == kPPid && id <= 0) return -EINVAL;
    int64_t error = 0;
    Process* child = wait_for_child(pid, options & kWnohang, error);
    // siginfo_t: si_signo, si_errno, si_code, pad, si_pid, si_uid, si_status.
    int32_t info[32] = {};
    if (child != nullptr) {
        const int status = child->wait_status;
        const bool killed = (status & 0x7f) != 0;
        info[0] = kSigChld;
        info[2] = killed ? 2 : 1;  // CLD_KILLED, CLD_EXITED
        info[4] = child->pid;
        info[6] = killed ? status & 0x7f : (status >> 8) & 0xff;
    } else if (error != 0) {
        return error;
    }
    if (a.a[2] != 0 && copy_to_user(a.a[2], info, sizeof(info)) != 0) return -EFAULT;
    if (child != nullptr && !(options & kWnowait)) reap_process(*child);
    return 0;
}

}  // namespace

void register_spawn_syscalls(SyscallHandler* t) {
    t[57] = sys_fork;  // partial: the parent waits until the child calls execve or exits
    t[58] = sys_vfork;
    t[59] = sys_execve;
    t[322] = sys_execveat;
    t[61] = sys_wait4;
    t[247] = sys_waitid;
}

}  // namespace kiln::linux
