#include "linux/process.h"

#include "fs/ext4/file_system.h"

#include "arch/x86_64/layout.h"
#include "console/console.h"
#include "core/errno.h"
#include "core/panic.h"
#include "fs/devices.h"
#include "fs/ext4/file_system.h"
#include "fs/vfs.h"
#include "lib/utility.h"
#include "linux/futex.h"
#include "linux/program_loader.h"
#include "linux/signal.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "linux/vdso.h"
#include "mm/address_space.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

constinit Vector<Process*>* processes = nullptr;  // every process not yet reaped, pid 1 first
constinit mm::Owner next_owner = 1;

template <typename T>
void remove_from(Vector<T*>& list, T* item) {
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] == item) {
            list.erase(i);
            return;
        }
    }
}

bool ignores_children(const Process& p) {
    constexpr uint64_t kSaNoCldWait = 2;
    const SignalAction& action = p.actions[kSigChld];
    return action.handler == 1 || (action.flags & kSaNoCldWait);  // SIG_IGN: children reap themselves
}

// The last thread of `p` is gone: its files close, its memory goes back (or away), its
// children pass to pid 1, and its parent hears of it.
void finish_process(Process& p) {
    p.fds.close_all();
    p.cwd = {};
    leave_memory(p);
    Process* init = find_process(kInitPid);
    for (Process* child : p.children) {
        child->parent = init;
        if (!init->children.push_back(child)) panic("processes: out of memory adopting an orphan");
        if (child->zombie) sched::wake(init->child_changed);
    }
    p.children = {};
    p.zombie = true;
    Process* parent = p.parent;
    if (ignores_children(*parent)) {
        reap_process(p);
        return;
    }
    send_signal_to_process(*parent, kSigChld);
    sched::wake(parent->child_changed);
}

// The calling thread leaves its process: the thread-id word is cleared for pthread_join, and
// the process ends with its last thread.
[[noreturn]] void end_thread(Process& p) {
    ThreadInfo* info = current_info();
    if (info->clear_child_tid != 0) {
        const uint32_t zero = 0;
        if (copy_to_user(info->clear_child_tid, &zero, 4) == 0) futex_wake(info->clear_child_tid, 1);
    }
    remove_from(p.threads, info);
    info->process = nullptr;
    if (p.threads.empty()) finish_process(p);
    sched::exit_current();
}

}  // namespace

Process& process() {
    ThreadInfo* info = current_info();
    return info != nullptr && info->process != nullptr ? *info->process : *(*processes)[0];
}

ThreadInfo* current_info() { return sched::current().linux; }

Vector<Process*>& all_processes() { return *processes; }

Process* find_process(int pid) {
    for (Process* p : *processes)
        if (p->pid == pid) return p;
    return nullptr;
}

Memory* new_memory() {
    auto* memory = new Memory;
    memory->owner = next_owner++;
    return memory;
}

void release_thread_info(ThreadInfo* info) { delete info; }

void reap_process(Process& p) {
    if (p.parent) remove_from(p.parent->children, &p);
    remove_from(*processes, &p);
    delete &p;
}

void leave_memory(Process& p) {
    Memory* memory = exchange(p.memory, static_cast<Memory*>(nullptr));
    if (memory == nullptr) return;
    auto& space = mm::address_space();
    if (Process* lender = exchange(p.lender, static_cast<Process*>(nullptr))) {
        // Put back now, before this process maps anything of its own where the parent's were.
        if (lender->snapshot) {
            space.restore_snapshot(*lender->snapshot);
            memory->brk = lender->snapshot_break;
        }
        lender->lending = false;
        sched::wake(lender->memory_returned);
    }
    if (--memory->users == 0) {
        space.unmap_owned(memory->owner);
        delete memory;
    }
}

void exit_thread(int status) {
    Process& p = process();
    if (p.threads.size() <= 1) exit_process((status & 0xff) << 8);
    end_thread(p);
}

void exit_process(int wait_status) {
    Process& p = process();
    if (p.pid == kInitPid) exit_application((wait_status & 0x7f) != 0 ? 128 + (wait_status & 0x7f) : wait_status >> 8);
    if (!p.exiting) {
        p.exiting = true;
        p.wait_status = wait_status;
        for (ThreadInfo* t : p.threads)
            if (t != current_info() && t->thread) sched::interrupt(*t->thread);
    }
    end_thread(p);
}

void hold_at_user_return(ThreadInfo& info) {
    Process& p = *info.process;
    while (p.frozen && !p.exiting) sched::wait(p.thawed, 0, false);
    if (p.exiting) end_thread(p);
}

namespace {

// kiln.workdir=PATH: the application's working directory (an image's WORKDIR), "/" without it.
bool apply_workdir(const Cmdline& cmdline, Process& proc) {
    StringView dir;
    if (!cmdline.find("kiln.workdir", dir) || dir.empty()) return true;
    RefPtr<fs::Node> node;
    if (dir[0] != '/' || fs::resolve(dir, fs::root(), true, node) != 0 || node->type() != fs::Type::kDirectory) {
        console::print("kiln: kiln.workdir={}: no such directory in the root file system\n", dir);
        return false;
    }
    proc.cwd = move(node);
    proc.cwd_path = String(dir);
    return true;
}

// kiln.user=UID[:GID]: who the application is (an image's USER, resolved to numbers when it was
// built); root without it. Every id of the set, as a login would leave them.
bool apply_user(const Cmdline& cmdline, Credentials& credentials) {
    StringView user;
    if (!cmdline.find("kiln.user", user) || user.empty()) return true;
    const size_t colon = user.find(':');
    uint64_t uid = 0, gid = 0;
    const bool valid = parse_u64(user.substr(0, colon), uid) && uid <= 0xfffffffe &&
                       (colon == StringView::npos || (parse_u64(user.substr(colon + 1), gid) && gid <= 0xfffffffe));
    if (!valid) {
        console::print("kiln: kiln.user={}: expected UID or UID:GID, numbers\n", user);
        return false;
    }
    credentials.uid = credentials.euid = credentials.suid = credentials.fsuid = static_cast<uint32_t>(uid);
    credentials.gid = credentials.egid = credentials.sgid = credentials.fsgid = static_cast<uint32_t>(gid);
    return true;
}

}  // namespace

bool start_application(const Cmdline& cmdline) {
    processes = new Vector<Process*>;
    auto* init = new Process;
    if (!processes->push_back(init)) return false;
    Process& proc = *init;
    proc.pid = proc.pgid = proc.sid = kInitPid;
    proc.strace = cmdline.flag("kiln.strace");
    proc.cwd = fs::root();
    proc.cwd_path = String("/");
    if (cmdline.app_argc() == 0) {
        console::print("kiln: nothing to run: no program after --\n");
        return false;
    }
    if (!apply_workdir(cmdline, proc) || !apply_user(cmdline, proc.credentials)) return false;
    const StringView name = cmdline.app_arg(0);
    String path;
    RefPtr<fs::Node> node = find_program(name, proc.cwd, proc.cwd_path.view(), path);
    if (!node) {
        console::print("kiln: cannot run {}: no such file in the root file system\n", name);
        return false;
    }
    // argv as given after `--`; the environment from every env.NAME=VALUE parameter, with a
    // PATH and HOME unless given.
    ProgramArgs args;
    for (size_t i = 0; i < cmdline.app_argc(); ++i)
        if (!args.argv.push_back(String(cmdline.app_arg(i)))) return false;
    bool have_path = false, have_home = false;
    for (size_t i = 0; i < cmdline.param_count(); ++i) {
        Cmdline::Param p = cmdline.param(i);
        if (!p.key.starts_with("env.")) continue;
        const StringView var_name = p.key.substr(4);
        char entry[Cmdline::kMaxLength + 1];
        const size_t length = format_buffer(entry, sizeof(entry), "{}={}", var_name, p.value);
        if (!args.envp.push_back(String(StringView(entry, length)))) return false;
        have_path |= var_name == "PATH";
        have_home |= var_name == "HOME";
    }
    if (!have_path && !args.envp.push_back(String(StringView("PATH=/bin:/usr/bin:/sbin:/usr/sbin")))) return false;
    if (!have_home && !args.envp.push_back(String(StringView("HOME=/")))) return false;

    // kiln.vdso=off leaves it out (libc then makes system calls for the time).
    StringView vdso_setting;
    if (!(cmdline.find("kiln.vdso", vdso_setting) && vdso_setting == "off") && !map_vdso())
        console::print("kiln: no room for the vDSO; clocks are read with system calls\n");
    proc.memory = new_memory();
    mm::address_space().set_owner(proc.memory->owner);
    AppImage image;
    LoadError error;
    String program;
    uint64_t entry = 0, sp = 0;
    if (resolve_program(String(path.view()), proc.cwd, args, node, image, proc.memory->owner, program, error) < 0 ||
        !load_program(program.view(), static_cast<fs::RamFile&>(*node), image, args, true, *proc.memory, entry, sp,
                      error)) {
        console::print("kiln: {}\n", StringView(error.text));
        return false;
    }
    proc.exe_path = move(program);
    fs::set_exe_path_source([] { return process().exe_path.view(); });

    RefPtr<fs::Node> console_node;
    if (fs::resolve("/dev/console", fs::root(), true, console_node) == 0) {
        for (int fd = 0; fd < 3; ++fd)
            (void)proc.fds.install(fd, make_ref<fs::NodeFile>(console_node, fs::kOpenReadWrite), false);
    }

    arch::InterruptFrame frame{};
    frame.vector = kSyscallVector;
    frame.rip = entry;
    frame.cs = KILN_SEL_USER_CS;
    frame.rflags = 0x202;
    frame.rsp = sp;
    frame.ss = KILN_SEL_USER_DS;
    auto* info = new ThreadInfo;
    info->process = init;
    if (!proc.threads.push_back(info)) return false;
    info->thread = sched::spawn_user(frame, info, 0);
    return info->thread != nullptr && info->thread->tid == kInitPid;
}

void exit_application(int status) {
    if (processes && process().strace) console::print("kiln: application exited with status {}\n", status);
    fs::ext4::unmount_volumes();  // what the application wrote is on its volumes, which are clean
    power_off(status);
}

}  // namespace kiln::linux
