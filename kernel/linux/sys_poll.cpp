// Waiting on several descriptors (poll, ppoll, select, pselect6), pipes and eventfds.
#include "core/errno.h"
#include "fs/epoll.h"
#include "fs/pipe.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "lib/vector.h"
#include "linux/process.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::linux {
namespace {

struct PollFd {
    int32_t fd;
    int16_t events;
    int16_t revents;
};

constexpr uint64_t kNoTimeout = ~0ull;

// Fills revents for every entry; returns how many have any.
int64_t scan(PollFd* fds, size_t count) {
    int64_t ready = 0;
    for (size_t i = 0; i < count; ++i) {
        PollFd& p = fds[i];
        p.revents = 0;
        if (p.fd < 0) continue;
        RefPtr<fs::File> f = process().fds.get(p.fd);
        const uint32_t wanted = static_cast<uint16_t>(p.events) | fs::kPollErr | fs::kPollHup;
        const uint32_t events = f ? (f->poll() & wanted) : fs::kPollNval;
        p.revents = static_cast<int16_t>(events);
        if (events) ++ready;
    }
    return ready;
}

// The core of poll and select: until something is ready, the timeout (relative ns) passes, or
// a signal arrives.
int64_t wait_for_events(PollFd* fds, size_t count, uint64_t timeout_ns) {
    const uint64_t deadline = timeout_ns == kNoTimeout ? 0 : time::now_ns() + timeout_ns;
    for (;;) {
        const int64_t ready = scan(fds, count);
        if (ready > 0 || timeout_ns == 0) return ready;
        if (deadline != 0 && time::now_ns() >= deadline) return 0;
        const sched::WakeReason why = sched::wait(fs::poll_waiters(), deadline, true);
        if (why == sched::WakeReason::kInterrupted) return -EINTR;
    }
}

int64_t read_timespec_ns(uint64_t user, uint64_t& ns) {
    if (user == 0) {
        ns = kNoTimeout;
        return 0;
    }
    int64_t ts[2];
    if (copy_from_user(ts, user, sizeof(ts)) != 0) return -EFAULT;
    if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000) return -EINVAL;
    ns = min<uint64_t>(static_cast<uint64_t>(ts[0]), 1ull << 33) * 1000000000 + static_cast<uint64_t>(ts[1]);
    return 0;
}

int64_t do_poll(uint64_t user_fds, uint64_t count, uint64_t timeout_ns) {
    if (count > 4096) return -EINVAL;
    Vector<PollFd> fds;
    if (!fds.reserve(count)) return -ENOMEM;
    for (uint64_t i = 0; i < count; ++i) (void)fds.push_back({});
    if (count > 0 && copy_from_user(fds.data(), user_fds, count * sizeof(PollFd)) != 0) return -EFAULT;
    const int64_t ready = wait_for_events(fds.data(), count, timeout_ns);
    if (ready < 0) return ready;
    if (count > 0 && copy_to_user(user_fds, fds.data(), count * sizeof(PollFd)) != 0) return -EFAULT;
    return ready;
}

// ppoll and pselect6 swap in a signal mask for the duration of the wait.
class ScopedSignalMask {
  public:
    explicit ScopedSignalMask(uint64_t user_mask) {
        if (user_mask == 0) return;
        uint64_t mask;
        if (copy_from_user(&mask, user_mask, 8) != 0) {
            ok_ = false;
            return;
        }
        saved_ = current_info()->signal_mask;
        current_info()->signal_mask = mask;
        active_ = true;
    }
    ~ScopedSignalMask() {
        if (active_) current_info()->signal_mask = saved_;
    }
    bool ok() const { return ok_; }

  private:
    uint64_t saved_ = 0;
    bool active_ = false;
    bool ok_ = true;
};

int64_t sys_poll(SyscallArgs& a) {
    const int64_t ms = static_cast<int32_t>(a.a[2]);
    return do_poll(a.a[0], a.a[1], ms < 0 ? kNoTimeout : static_cast<uint64_t>(ms) * 1000000);
}

int64_t sys_ppoll(SyscallArgs& a) {
    uint64_t ns;
    if (int64_t r = read_timespec_ns(a.a[2], ns); r < 0) return r;
    ScopedSignalMask mask(a.a[3]);
    if (!mask.ok()) return -EFAULT;
    return do_poll(a.a[0], a.a[1], ns);
}

int64_t do_select(uint64_t nfds, uint64_t user_read, uint64_t user_write, uint64_t user_except, uint64_t timeout_ns) {
    if (nfds > 1024) return -EINVAL;
    uint64_t sets[3][16] = {};
    const uint64_t users[3] = {user_read, user_write, user_except};
    const size_t bytes = (nfds + 63) / 64 * 8;
    for (int s = 0; s < 3; ++s)
        if (users[s] && bytes && copy_from_user(sets[s], users[s], bytes) != 0) return -EFAULT;
    Vector<PollFd> fds;
    for (uint64_t fd = 0; fd < nfds; ++fd) {
        int16_t events = 0;
        if (sets[0][fd / 64] & (1ull << (fd % 64))) events |= fs::kPollIn;
        if (sets[1][fd / 64] & (1ull << (fd % 64))) events |= fs::kPollOut;
        if (sets[2][fd / 64] & (1ull << (fd % 64))) events |= fs::kPollPri;
        if (events && !fds.push_back({static_cast<int32_t>(fd), events, 0})) return -ENOMEM;
    }
    const int64_t r = wait_for_events(fds.data(), fds.size(), timeout_ns);
    if (r < 0) return r;
    uint64_t out[3][16] = {};
    int64_t count = 0;
    for (const PollFd& p : fds) {
        if (p.revents & fs::kPollNval) return -EBADF;
        const uint64_t fd = static_cast<uint64_t>(p.fd), b = 1ull << (fd % 64);
        if ((p.events & fs::kPollIn) && (p.revents & (fs::kPollIn | fs::kPollHup | fs::kPollErr)))
            out[0][fd / 64] |= b, ++count;
        if ((p.events & fs::kPollOut) && (p.revents & (fs::kPollOut | fs::kPollErr))) out[1][fd / 64] |= b, ++count;
        if ((p.events & fs::kPollPri) && (p.revents & fs::kPollPri)) out[2][fd / 64] |= b, ++count;
    }
    for (int s = 0; s < 3; ++s)
        if (users[s] && bytes && copy_to_user(users[s], out[s], bytes) != 0) return -EFAULT;
    return count;
}

int64_t sys_select(SyscallArgs& a) {
    uint64_t ns = kNoTimeout;
    if (a.a[4] != 0) {
        int64_t tv[2];
        if (copy_from_user(tv, a.a[4], sizeof(tv)) != 0) return -EFAULT;
        if (tv[0] < 0 || tv[1] < 0) return -EINVAL;
        ns = min<uint64_t>(static_cast<uint64_t>(tv[0]), 1ull << 33) * 1000000000 + static_cast<uint64_t>(tv[1]) * 1000;
    }
    return do_select(a.a[0], a.a[1], a.a[2], a.a[3], ns);
}

int64_t sys_pselect6(SyscallArgs& a) {
    uint64_t ns;
    if (int64_t r = read_timespec_ns(a.a[4], ns); r < 0) return r;
    uint64_t mask_arg[2] = {0, 0};  // { const sigset_t* ss; size_t ss_len; }
    if (a.a[5] && copy_from_user(mask_arg, a.a[5], sizeof(mask_arg)) != 0) return -EFAULT;
    ScopedSignalMask mask(mask_arg[0]);
    if (!mask.ok()) return -EFAULT;
    return do_select(a.a[0], a.a[1], a.a[2], a.a[3], ns);
}

int64_t make_pipe(uint64_t user_fds, uint64_t flags) {
    if (flags & ~uint64_t{fs::kOpenCloexec | fs::kOpenNonBlock}) return -EINVAL;
    RefPtr<fs::File> r, w;
    if (int64_t e = fs::create_pipe(static_cast<uint32_t>(flags), r, w); e < 0) return e;
    const bool cloexec = flags & fs::kOpenCloexec;
    const int rfd = process().fds.allocate(r, cloexec);
    if (rfd < 0) return rfd;
    const int wfd = process().fds.allocate(w, cloexec);
    if (wfd < 0) {
        process().fds.close(rfd);
        return wfd;
    }
    const int32_t pair[2] = {rfd, wfd};
    if (copy_to_user(user_fds, pair, sizeof(pair)) != 0) {
        process().fds.close(rfd);
        process().fds.close(wfd);
        return -EFAULT;
    }
    return 0;
}

int64_t sys_pipe(SyscallArgs& a) { return make_pipe(a.a[0], 0); }
int64_t sys_pipe2(SyscallArgs& a) { return make_pipe(a.a[0], a.a[1]); }

int64_t make_eventfd(uint64_t initial, uint64_t flags) {
    constexpr uint64_t kSemaphore = 1;
    if (flags & ~uint64_t{fs::kOpenCloexec | fs::kOpenNonBlock | kSemaphore}) return -EINVAL;
    return process().fds.allocate(fs::create_eventfd(static_cast<uint32_t>(initial), static_cast<uint32_t>(flags)),
                                  flags & fs::kOpenCloexec);
}

int64_t sys_eventfd(SyscallArgs& a) { return make_eventfd(a.a[0], 0); }
int64_t sys_eventfd2(SyscallArgs& a) { return make_eventfd(a.a[0], a.a[1]); }

int64_t sys_epoll_create1(SyscallArgs& a) {
    if (a.a[0] & ~uint64_t{fs::kOpenCloexec}) return -EINVAL;
    return process().fds.allocate(fs::create_epoll(), a.a[0] & fs::kOpenCloexec);
}

int64_t sys_epoll_create(SyscallArgs& a) {
    if (static_cast<int64_t>(a.a[0]) <= 0) return -EINVAL;
    return process().fds.allocate(fs::create_epoll(), false);
}

fs::Epoll* epoll_of(uint64_t fd, RefPtr<fs::File>& holder) {
    holder = process().fds.get(static_cast<int>(fd));
    if (!holder) return nullptr;
    return holder->as_epoll();
}

int64_t sys_epoll_ctl(SyscallArgs& a) {
    constexpr uint64_t kAdd = 1, kDel = 2, kMod = 3;
    RefPtr<fs::File> holder;
    if (!process().fds.get(static_cast<int>(a.a[0]))) return -EBADF;
    fs::Epoll* ep = epoll_of(a.a[0], holder);
    if (ep == nullptr) return -EINVAL;
    const int fd = static_cast<int>(a.a[2]);
    RefPtr<fs::File> target = process().fds.get(fd);
    if (!target) return -EBADF;
    if (a.a[1] == kDel) return ep->remove(fd);
    fs::EpollEvent ev;
    if (copy_from_user(&ev, a.a[3], sizeof(ev)) != 0) return -EFAULT;
    if (a.a[1] == kAdd) return ep->add(fd, target, ev.events, ev.data);
    if (a.a[1] == kMod) return ep->modify(fd, ev.events, ev.data);
    return -EINVAL;
}

int64_t epoll_wait_for(uint64_t epfd, uint64_t user_events, int64_t max, uint64_t timeout_ns) {
    if (max <= 0 || max > 65536) return -EINVAL;
    RefPtr<fs::File> holder;
    fs::Epoll* ep = epoll_of(epfd, holder);
    if (ep == nullptr) return holder ? -EINVAL : -EBADF;
    const uint64_t deadline = timeout_ns == kNoTimeout ? 0 : time::now_ns() + timeout_ns;
    fs::EpollEvent chunk[64];
    for (;;) {
        const size_t n = ep->collect(chunk, min<size_t>(static_cast<size_t>(max), 64));
        if (n > 0)
            return copy_to_user(user_events, chunk, n * sizeof(fs::EpollEvent)) == 0 ? static_cast<int64_t>(n)
                                                                                     : -EFAULT;
        if (timeout_ns == 0 || (deadline != 0 && time::now_ns() >= deadline)) return 0;
        if (sched::wait(fs::poll_waiters(), deadline, true) == sched::WakeReason::kInterrupted) return -EINTR;
    }
}

uint64_t milliseconds(uint64_t arg) {
    const int64_t ms = static_cast<int32_t>(arg);
    return ms < 0 ? kNoTimeout : static_cast<uint64_t>(ms) * 1000000;
}

int64_t sys_epoll_wait(SyscallArgs& a) {
    return epoll_wait_for(a.a[0], a.a[1], static_cast<int32_t>(a.a[2]), milliseconds(a.a[3]));
}

int64_t sys_epoll_pwait(SyscallArgs& a) {
    ScopedSignalMask mask(a.a[4]);
    if (!mask.ok()) return -EFAULT;
    return epoll_wait_for(a.a[0], a.a[1], static_cast<int32_t>(a.a[2]), milliseconds(a.a[3]));
}

int64_t sys_epoll_pwait2(SyscallArgs& a) {
    uint64_t ns;
    if (int64_t r = read_timespec_ns(a.a[3], ns); r < 0) return r;
    ScopedSignalMask mask(a.a[4]);
    if (!mask.ok()) return -EFAULT;
    return epoll_wait_for(a.a[0], a.a[1], static_cast<int32_t>(a.a[2]), ns);
}

}  // namespace

void register_poll_syscalls(SyscallHandler* t) {
    t[291] = sys_epoll_create1;
    t[213] = sys_epoll_create;
    t[233] = sys_epoll_ctl;
    t[232] = sys_epoll_wait;
    t[281] = sys_epoll_pwait;
    t[441] = sys_epoll_pwait2;
    t[7] = sys_poll;
    t[271] = sys_ppoll;
    t[23] = sys_select;
    t[270] = sys_pselect6;
    t[22] = sys_pipe;
    t[293] = sys_pipe2;
    t[284] = sys_eventfd;
    t[290] = sys_eventfd2;
}

}  // namespace kiln::linux
