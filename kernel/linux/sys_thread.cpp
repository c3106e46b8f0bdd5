// Threads: clone and clone3 for threads of the one process. A new process (fork, vfork, a clone
// without CLONE_VM) cannot exist in a unikernel: those fail with ENOSYS.
#include "core/errno.h"
#include "lib/string.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kCloneVm = 0x100, kCloneFs = 0x200, kCloneFiles = 0x400, kCloneSighand = 0x800, kCloneVfork = 0x4000,
                   kCloneThread = 0x10000, kCloneSettls = 0x80000, kCloneParentSettid = 0x100000,
                   kCloneChildCleartid = 0x200000, kCloneChildSettid = 0x1000000;

struct CloneRequest {
    uint64_t flags;
    uint64_t stack;  // new RSP, 0 to keep the parent's
    uint64_t parent_tid;
    uint64_t child_tid;
    uint64_t tls;
};

int64_t spawn_thread(const CloneRequest& r, const arch::InterruptFrame& parent) {
    const uint64_t needed = kCloneVm | kCloneThread | kCloneSighand;
    if ((r.flags & needed) != needed || (r.flags & kCloneVfork)) return -ENOSYS;  // no new processes
    arch::InterruptFrame frame = parent;
    frame.rax = 0;  // the child sees clone() return 0
    if (r.stack != 0) frame.rsp = r.stack;
    auto* info = new ThreadInfo;
    info->signal_mask = current_info()->signal_mask;
    if (r.flags & kCloneChildCleartid) info->clear_child_tid = r.child_tid;
    if (!process().threads.push_back(info)) {
        delete info;
        return -ENOMEM;
    }
    const uint64_t tls = (r.flags & kCloneSettls) ? r.tls : sched::current().fs_base;
    sched::Thread* t = sched::spawn_user(frame, info, tls);
    if (t == nullptr) {
        release_thread_info(info);
        return -ENOMEM;
    }
    info->thread = t;
    const uint32_t tid = static_cast<uint32_t>(t->tid);
    if (r.flags & kCloneParentSettid) (void)put_user(r.parent_tid, tid);
    if (r.flags & kCloneChildSettid) (void)put_user(r.child_tid, tid);
    return t->tid;
}

int64_t sys_clone(SyscallArgs& a) {
    // x86-64 argument order: flags, stack, parent_tid, child_tid, tls.
    return spawn_thread({a.a[0], a.a[1], a.a[2], a.a[3], a.a[4]}, *a.frame);
}

int64_t sys_clone3(SyscallArgs& a) {
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls...
    uint64_t args[8] = {};
    const uint64_t size = a.a[1];
    if (size < 64 || size > 4096) return -EINVAL;
    if (copy_from_user(args, a.a[0], sizeof(args)) != 0) return -EFAULT;
    const uint64_t stack_top = args[5] != 0 ? args[5] + args[6] : 0;
    return spawn_thread({args[0], stack_top, args[3], args[2], args[7]}, *a.frame);
}

int64_t sys_no_new_process(SyscallArgs&) { return -ENOSYS; }  // fork, vfork, execve

}  // namespace

void register_thread_syscalls(SyscallHandler* t) {
    t[56] = sys_clone;
    t[435] = sys_clone3;
    t[57] = sys_no_new_process;  // refused: one process (ENOSYS)
    t[58] = sys_no_new_process;  // refused: one process (ENOSYS)
}

}  // namespace kiln::linux
