// Threads: clone and clone3. A clone that asks for a process rather than a thread goes to
// spawn_process (sys_spawn.cpp).
#include "core/errno.h"
#include "lib/string.h"
#include "linux/process.h"
#include "linux/spawn.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

int64_t spawn_thread(const CloneRequest& r, const arch::InterruptFrame& parent) {
    if (!(r.flags & kCloneThread)) return spawn_process(r, parent);
    const uint64_t needed = kCloneVm | kCloneSighand;
    if ((r.flags & needed) != needed || (r.flags & kCloneVfork)) return -EINVAL;
    arch::InterruptFrame frame = parent;
    frame.rax = 0;  // the child sees clone() return 0
    if (r.stack != 0) frame.rsp = r.stack;
    auto* info = new ThreadInfo;
    info->process = &process();
    info->signal_mask = current_info()->signal_mask;
    if (r.flags & kCloneChildCleartid) info->clear_child_tid = r.child_tid;
    if (!process().threads.push_back(info)) {
        delete info;
        return -ENOMEM;
    }
    const uint64_t tls = (r.flags & kCloneSettls) ? r.tls : sched::current().fs_base;
    sched::Thread* t = sched::spawn_user(frame, info, tls);
    if (t == nullptr) {
        process().threads.erase(process().threads.size() - 1);  // the one just added
        delete info;
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

}  // namespace

void register_thread_syscalls(SyscallHandler* t) {
    t[56] = sys_clone;
    t[435] = sys_clone3;
}

}  // namespace kiln::linux
