#include "linux/signal.h"
#include "linux/signal_frame.h"

#include "arch/x86_64/fpu.h"
#include "console/console.h"
#include "core/errno.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "mm/address_space.h"
#include "sched/thread.h"

namespace kiln::linux {
namespace {

constexpr uint64_t kSaSiginfo = 0x4, kSaOnstack = 0x08000000, kSaRestart = 0x10000000, kSaNodefer = 0x40000000,
                   kSaResethand = 0x80000000, kSaRestorer = 0x04000000;
constexpr uint64_t kSigDfl = 0, kSigIgn = 1;
constexpr int kSsOnstack = 1, kSsDisable = 2;
constexpr int kSiTkill = -6, kSiUser = 0;
constexpr uint64_t kUcFpXstate = 1, kUcSigcontextSs = 2, kUcStrictRestoreSs = 4;
constexpr uint32_t kFpXstateMagic1 = 0x46505853, kFpXstateMagic2 = 0x46505845;

uint64_t bit(int signo) { return 1ull << (signo - 1); }
// SIGKILL and SIGSTOP can be neither caught nor blocked.
constexpr uint64_t kUnblockable = (1ull << (kSigKill - 1)) | (1ull << (kSigStop - 1));

bool ignored_by_default(int signo) {
    return signo == kSigChld || signo == kSigUrg || signo == kSigWinch || signo == kSigCont;
}

[[noreturn]] void terminate(int signo, const SignalInfo* fault, const arch::InterruptFrame* frame) {
    if (fault && frame)
        console::print("kiln: application crashed: signal {} at rip {:#x}, address {:#x} (pid {}, {})\n", signo,
                       frame->rip, fault->address, process().pid, process().exe_path.view());
    else if (process().pid == kInitPid)
        console::print("kiln: application killed by signal {}\n", signo);
    exit_process(signo);
}

struct SigInfo {
    int32_t signo;
    int32_t errno_;
    int32_t code;
    int32_t pad;
    uint64_t fields[14];  // si_pid/si_uid or si_addr...
};
static_assert(sizeof(SigInfo) == 128);

struct RtSigFrame {
    uint64_t pretcode;  // the handler's return address: sa_restorer, which calls rt_sigreturn
    UContext uc;
    SigInfo info;
};

void fill_context(SigContext& c, const arch::InterruptFrame& f) {
    c = {};
    registers_to_context(f, c);
    c.cs = static_cast<uint16_t>(f.cs);
    c.ss = static_cast<uint16_t>(f.ss);
    c.err = f.vector < 32 ? f.error_code : 0;
    c.trapno = f.vector < 32 ? f.vector : 0;
}

bool on_altstack(const ThreadInfo& t, uint64_t sp) {
    return t.altstack_flags != kSsDisable && sp > t.altstack_sp && sp <= t.altstack_sp + t.altstack_size;
}

// Writes the FPU state (XSAVE, with the software bytes Linux adds) at `at`. Returns its size.
size_t save_fpu_to_user(uint64_t at, bool& ok) {
    alignas(64) static uint8_t area[8192];
    const size_t size = fpu::state_size();
    memset(area, 0, size);
    fpu::save(area);
    size_t total = size;
    if (fpu::uses_xsave()) {
        // struct _fpx_sw_bytes at offset 464 of the legacy area, and MAGIC2 after the state.
        const uint32_t sw[6] = {kFpXstateMagic1,
                                static_cast<uint32_t>(size + 4),
                                static_cast<uint32_t>(fpu::enabled_features()),
                                static_cast<uint32_t>(fpu::enabled_features() >> 32),
                                static_cast<uint32_t>(size),
                                0};
        memcpy(area + 464, sw, sizeof(sw));
        memcpy(area + size, &kFpXstateMagic2, 4);
        total = size + 4;
    }
    ok = ok && copy_to_user(at, area, total) == 0;
    return total;
}

bool restore_fpu_from_user(uint64_t at) {
    alignas(64) static uint8_t area[8192];
    const size_t size = fpu::state_size();
    if (copy_from_user(area, at, size) != 0) return false;
    if (fpu::uses_xsave()) {
        // XRSTOR faults on a malformed header: check what it checks before using it.
        uint64_t xstate_bv, xcomp_bv;
        memcpy(&xstate_bv, area + 512, 8);
        memcpy(&xcomp_bv, area + 520, 8);
        if ((xstate_bv & ~fpu::enabled_features()) != 0 || xcomp_bv != 0) return false;
        for (size_t i = 528; i < 576; ++i)
            if (area[i] != 0) return false;
    }
    uint32_t mxcsr;
    memcpy(&mxcsr, area + 24, 4);
    if (mxcsr & 0xffff0000) return false;  // reserved MXCSR bits make FXRSTOR fault
    fpu::restore(area);
    return true;
}

// Builds the frame for `signo` and points the thread at its handler.
void setup_frame(int signo, const SignalInfo& si, arch::InterruptFrame& frame) {
    Process& p = process();
    ThreadInfo& t = *current_info();
    SignalAction& action = p.actions[signo];
    if (!(action.flags & kSaRestorer)) terminate(kSigSegv, nullptr, nullptr);
    const uint64_t handler = action.handler;

    // A blocking call cut short by this signal: restart it or report EINTR.
    if (frame.vector == kSyscallVector && static_cast<int64_t>(frame.rax) == kErestartsys) {
        if (action.flags & kSaRestart) {
            frame.rax = frame.error_code;  // the original system call number
            frame.rip -= 2;                // the `syscall` instruction again
        } else {
            frame.rax = static_cast<uint64_t>(-EINTR);
        }
    }

    uint64_t sp = frame.rsp - 128;  // the red zone stays intact
    if ((action.flags & kSaOnstack) && t.altstack_flags != kSsDisable && !on_altstack(t, frame.rsp))
        sp = t.altstack_sp + t.altstack_size;
    const uint64_t fp_at = (sp - fpu::state_size() - 4) & ~uint64_t{63};
    bool ok = true;
    save_fpu_to_user(fp_at, ok);
    const uint64_t frame_at = ((fp_at - sizeof(RtSigFrame)) & ~uint64_t{15}) - 8;

    RtSigFrame f{};
    f.pretcode = action.restorer;
    f.uc.flags = kUcSigcontextSs | kUcStrictRestoreSs | (fpu::uses_xsave() ? kUcFpXstate : 0);
    f.uc.ss_sp = t.altstack_sp;
    f.uc.ss_size = t.altstack_size;
    f.uc.ss_flags = t.altstack_flags == kSsDisable ? kSsDisable : (on_altstack(t, frame.rsp) ? kSsOnstack : 0);
    fill_context(f.uc.mcontext, frame);
    f.uc.mcontext.fpstate = fp_at;
    f.uc.mcontext.oldmask = t.signal_mask;
    f.uc.mcontext.cr2 = si.address;
    f.uc.sigmask = t.signal_mask;
    f.info.signo = signo;
    f.info.code = si.code;
    if (si.code == kSiTkill || si.code == kSiUser)
        f.info.fields[0] = static_cast<uint64_t>(process().pid);  // si_pid, si_uid = 0
    else
        f.info.fields[0] = si.address;  // si_addr
    ok = ok && copy_to_user(frame_at, &f, sizeof(f)) == 0;
    if (!ok) terminate(kSigSegv, nullptr, nullptr);  // no room for the frame: as Linux does

    t.signal_mask |= action.mask | ((action.flags & kSaNodefer) ? 0 : bit(signo));
    t.signal_mask &= ~kUnblockable;
    if (action.flags & kSaResethand) action = {};

    frame.rsp = frame_at;
    frame.rip = handler;
    frame.rdi = static_cast<uint64_t>(signo);
    frame.rsi = frame_at + offsetof(RtSigFrame, info);
    frame.rdx = frame_at + offsetof(RtSigFrame, uc);
    frame.rax = 0;
    frame.rflags &= ~uint64_t{0x40500};  // TF, DF, AC off in the handler
}

int take_pending(ThreadInfo& t) {
    Process& p = process();
    const uint64_t deliverable = (t.pending | p.pending) & ~t.signal_mask;
    if (deliverable == 0) return 0;
    const int signo = __builtin_ctzll(deliverable) + 1;
    if (t.pending & bit(signo))
        t.pending &= ~bit(signo);
    else
        p.pending &= ~bit(signo);
    return signo;
}

}  // namespace

bool signal_pending(const ThreadInfo& info) {
    const uint64_t process_pending = info.process != nullptr ? info.process->pending : 0;
    return ((info.pending | process_pending) & ~info.signal_mask) != 0 || (info.process && info.process->exiting);
}

void send_signal(ThreadInfo& thread, int signo) {
    thread.pending |= bit(signo);
    if (thread.thread && (bit(signo) & ~thread.signal_mask)) sched::interrupt(*thread.thread);
}

void send_signal_to_process(Process& p, int signo) {
    if (p.zombie) return;
    // To a thread that does not block it, if any; else it stays pending for the process.
    for (ThreadInfo* t : p.threads) {
        if (!(t->signal_mask & bit(signo))) {
            send_signal(*t, signo);
            return;
        }
    }
    p.pending |= bit(signo);
}

void force_signal(const SignalInfo& info, arch::InterruptFrame& frame) {
    ThreadInfo* t = current_info();
    const SignalAction& action = process().actions[info.signo];
    const bool blocked = t->signal_mask & bit(info.signo);
    if (blocked || action.handler == kSigIgn || action.handler == kSigDfl) terminate(info.signo, &info, &frame);
    setup_frame(info.signo, info, frame);
}

bool deliver_pending_signal(arch::InterruptFrame& frame) {
    ThreadInfo* t = current_info();
    const int signo = take_pending(*t);
    if (signo == 0) {
        // No handler will run: an interrupted call that nobody handles simply restarts.
        if (frame.vector == kSyscallVector && static_cast<int64_t>(frame.rax) == kErestartsys) {
            frame.rax = frame.error_code;
            frame.rip -= 2;
        }
        return false;
    }
    const SignalAction& action = process().actions[signo];
    if (action.handler == kSigIgn || (action.handler == kSigDfl && ignored_by_default(signo))) return true;
    if (action.handler == kSigDfl) terminate(signo, nullptr, nullptr);
    setup_frame(signo, {signo, kSiTkill, 0}, frame);
    return true;
}

namespace {

int64_t sys_rt_sigaction(SyscallArgs& a) {
    const int signo = static_cast<int>(a.a[0]);
    if (signo < 1 || signo > kSignalCount || a.a[3] != 8) return -EINVAL;
    SignalAction& action = process().actions[signo];
    if (a.a[2] != 0 && copy_to_user(a.a[2], &action, sizeof(action)) != 0) return -EFAULT;
    if (a.a[1] != 0) {
        if (signo == kSigKill || signo == kSigStop) return -EINVAL;
        SignalAction fresh;
        if (copy_from_user(&fresh, a.a[1], sizeof(fresh)) != 0) return -EFAULT;
        fresh.mask &= ~kUnblockable;
        action = fresh;
    }
    return 0;
}

int64_t sys_rt_sigprocmask(SyscallArgs& a) {
    if (a.a[3] != 8) return -EINVAL;
    ThreadInfo& t = *current_info();
    const uint64_t old = t.signal_mask;
    if (a.a[1] != 0) {
        uint64_t set;
        if (copy_from_user(&set, a.a[1], 8) != 0) return -EFAULT;
        switch (a.a[0]) {
            case 0: t.signal_mask |= set; break;   // SIG_BLOCK
            case 1: t.signal_mask &= ~set; break;  // SIG_UNBLOCK
            case 2: t.signal_mask = set; break;    // SIG_SETMASK
            default: return -EINVAL;
        }
        t.signal_mask &= ~kUnblockable;
    }
    if (a.a[2] != 0 && copy_to_user(a.a[2], &old, 8) != 0) return -EFAULT;
    return 0;
}

int64_t sys_rt_sigpending(SyscallArgs& a) {
    const uint64_t pending = (current_info()->pending | process().pending) & current_info()->signal_mask;
    return copy_to_user(a.a[0], &pending, 8);
}

int64_t sys_sigaltstack(SyscallArgs& a) {
    ThreadInfo& t = *current_info();
    const uint64_t rsp = a.frame->rsp;
    if (a.a[1] != 0) {
        struct {
            uint64_t sp;
            int32_t flags;
            int32_t pad;
            uint64_t size;
        } old = {t.altstack_sp, t.altstack_flags == kSsDisable ? kSsDisable : (on_altstack(t, rsp) ? kSsOnstack : 0), 0,
                 t.altstack_size};
        if (copy_to_user(a.a[1], &old, sizeof(old)) != 0) return -EFAULT;
    }
    if (a.a[0] != 0) {
        if (on_altstack(t, rsp)) return -EPERM;
        uint64_t ss[3];
        if (copy_from_user(ss, a.a[0], sizeof(ss)) != 0) return -EFAULT;
        const int flags = static_cast<int>(ss[1]);
        if (flags & kSsDisable) {
            t.altstack_flags = kSsDisable;
            t.altstack_sp = t.altstack_size = 0;
            return 0;
        }
        constexpr int kSsAutodisarm = static_cast<int>(1u << 31);
        if (flags & ~(kSsOnstack | kSsAutodisarm)) return -EINVAL;
        if (ss[2] < 2048) return -ENOMEM;
        t.altstack_sp = ss[0];
        t.altstack_size = ss[2];
        t.altstack_flags = 0;
    }
    return 0;
}

ThreadInfo* thread_by_tid(int64_t tid) {
    for (Process* p : all_processes())
        for (ThreadInfo* t : p->threads)
            if (t->thread && t->thread->tid == tid) return t;
    return nullptr;
}

int64_t check_signal(uint64_t signo) { return signo > static_cast<uint64_t>(kSignalCount) ? -EINVAL : 0; }

int64_t sys_tgkill(SyscallArgs& a) {
    if (int64_t r = check_signal(a.a[2]); r < 0) return r;
    ThreadInfo* t = thread_by_tid(static_cast<int64_t>(a.a[1]));
    if (t == nullptr || t->process == nullptr || t->process->pid != static_cast<int64_t>(a.a[0])) return -ESRCH;
    if (a.a[2] != 0) send_signal(*t, static_cast<int>(a.a[2]));
    return 0;
}

int64_t sys_tkill(SyscallArgs& a) {
    if (int64_t r = check_signal(a.a[1]); r < 0) return r;
    ThreadInfo* t = thread_by_tid(static_cast<int64_t>(a.a[0]));
    if (t == nullptr) return -ESRCH;
    if (a.a[1] != 0) send_signal(*t, static_cast<int>(a.a[1]));
    return 0;
}

// kill(pid): one process; 0, the caller's group; -1, every process but pid 1 (all of them if the
// caller is alone); below -1, the group -pid.
int64_t sys_kill(SyscallArgs& a) {
    const auto pid = static_cast<int32_t>(a.a[0]);
    const int signo = static_cast<int>(a.a[1]);
    if (int64_t r = check_signal(a.a[1]); r < 0) return r;
    const int group = pid == 0 ? process().pgid : -pid;
    bool found = false;
    // Collected first: a signal that ends a process may change the list.
    Vector<Process*> targets;
    for (Process* p : all_processes()) {
        if (p->zombie) continue;
        const bool match = pid > 0     ? p->pid == pid
                           : pid == -1 ? (p->pid != kInitPid || all_processes().size() == 1)
                                       : p->pgid == group;
        if (match && !targets.push_back(p)) return -ENOMEM;
    }
    for (Process* p : targets) {
        found = true;
        if (signo != 0) send_signal_to_process(*p, signo);
    }
    return found ? 0 : -ESRCH;
}

int64_t sys_rt_sigreturn(SyscallArgs& a) {
    arch::InterruptFrame& frame = *a.frame;
    ThreadInfo& t = *current_info();
    const uint64_t frame_at = frame.rsp - 8;  // the handler's `ret` popped pretcode
    RtSigFrame f;
    if (copy_from_user(&f, frame_at, sizeof(f)) != 0) terminate(kSigSegv, nullptr, nullptr);
    const SigContext& c = f.uc.mcontext;
    const uint64_t flags = frame.rflags;
    registers_from_context(c, frame);
    // User-controllable flags only: CF PF AF ZF SF TF DF OF AC RF... never IOPL or VM; IF stays on.
    constexpr uint64_t kUserFlags = 0x40dd5;
    frame.rflags = (flags & ~kUserFlags) | (c.eflags & kUserFlags) | 0x200;
    if (frame.rip >= mm::kUserEnd || frame.rsp >= mm::kUserEnd) terminate(kSigSegv, nullptr, nullptr);
    t.signal_mask = f.uc.sigmask & ~kUnblockable;
    if (c.fpstate != 0 && !restore_fpu_from_user(c.fpstate)) terminate(kSigSegv, nullptr, nullptr);
    t.exact_return = true;  // every register, RCX and R11 included, comes back
    return static_cast<int64_t>(c.rax);
}

}  // namespace

void register_signal_syscalls(SyscallHandler* t) {
    t[13] = sys_rt_sigaction;
    t[14] = sys_rt_sigprocmask;
    t[15] = sys_rt_sigreturn;
    t[127] = sys_rt_sigpending;
    t[131] = sys_sigaltstack;
    t[62] = sys_kill;
    t[200] = sys_tkill;
    t[234] = sys_tgkill;
}

}  // namespace kiln::linux
