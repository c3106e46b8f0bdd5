#include "linux/futex.h"

#include "core/errno.h"
#include "lib/intrusive_list.h"
#include "lib/utility.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::linux {
namespace {

// Every waiter, whatever its address: few threads wait at once in a unikernel, and one vCPU
// means no lock is needed (no kernel code runs between the value check and the sleep).
struct Waiter {
    ListNode link;
    uint64_t address;
    uint32_t bitset;
    sched::WaitQueue queue;
};

IntrusiveList<Waiter, &Waiter::link>& waiters() {
    static IntrusiveList<Waiter, &Waiter::link> list;
    return list;
}

constexpr uint64_t kWait = 0, kWake = 1, kRequeue = 3, kCmpRequeue = 4, kWakeOp = 5, kWaitBitset = 9, kWakeBitset = 10;
constexpr uint64_t kPrivate = 128, kClockRealtime = 256;

int64_t wait(uint64_t address, uint32_t expected, uint64_t deadline_ns, uint32_t bitset) {
    if (address % 4 != 0) return -EINVAL;
    if (bitset == 0) return -EINVAL;
    uint32_t value;
    if (get_user(value, address) != 0) return -EFAULT;
    if (value != expected) return -EAGAIN;
    Waiter w{{}, address, bitset, {}};
    waiters().push_back(w);
    const sched::WakeReason why = sched::wait(w.queue, deadline_ns, true);
    IntrusiveList<Waiter, &Waiter::link>::remove(w);
    switch (why) {
        case sched::WakeReason::kWoken: return 0;
        case sched::WakeReason::kTimeout: return -ETIMEDOUT;
        default: return -EINTR;
    }
}

int64_t requeue(uint64_t from, uint64_t wake_count, uint64_t move_count, uint64_t to) {
    int64_t woken = futex_wake(from, wake_count);
    int64_t moved = 0;
    waiters().for_each([&](Waiter& w) {
        if (w.address == from && static_cast<uint64_t>(moved) < move_count) {
            w.address = to;
            ++moved;
        }
    });
    return woken + moved;
}

// FUTEX_WAKE_OP: *uaddr2 = op(*uaddr2, oparg); wake uaddr; if cmp(old, cmparg) wake uaddr2.
int64_t wake_op(uint64_t address, uint64_t count, uint64_t count2, uint64_t address2, uint32_t encoded) {
    const uint32_t op = (encoded >> 28) & 7, cmp = (encoded >> 24) & 15;
    uint32_t oparg = (encoded >> 12) & 0xfff, cmparg = encoded & 0xfff;
    if ((encoded >> 31) & 1) oparg = 1u << (oparg & 31);  // FUTEX_OP_OPARG_SHIFT
    uint32_t old;
    if (get_user(old, address2) != 0) return -EFAULT;
    uint32_t updated;
    switch (op) {
        case 0: updated = oparg; break;
        case 1: updated = old + oparg; break;
        case 2: updated = old | oparg; break;
        case 3: updated = old & ~oparg; break;
        case 4: updated = old ^ oparg; break;
        default: return -ENOSYS;
    }
    if (put_user(address2, updated) != 0) return -EFAULT;
    int64_t woken = futex_wake(address, count);
    bool condition;
    switch (cmp) {
        case 0: condition = old == cmparg; break;
        case 1: condition = old != cmparg; break;
        case 2: condition = old < cmparg; break;
        case 3: condition = old <= cmparg; break;
        case 4: condition = old > cmparg; break;
        case 5: condition = old >= cmparg; break;
        default: return -ENOSYS;
    }
    if (condition) woken += futex_wake(address2, count2);
    return woken;
}

int64_t sys_futex(SyscallArgs& a) {
    const uint64_t address = a.a[0], op = a.a[1] & ~(kPrivate | kClockRealtime), value = a.a[2];
    const bool realtime = a.a[1] & kClockRealtime;
    switch (op) {
        case kWait:
        case kWaitBitset: {
            uint64_t deadline = 0;
            if (a.a[3] != 0) {
                int64_t ts[2];
                if (copy_from_user(ts, a.a[3], sizeof(ts)) != 0) return -EFAULT;
                if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000) return -EINVAL;
                const uint64_t ns =
                    min<uint64_t>(static_cast<uint64_t>(ts[0]), 1ull << 33) * 1000000000 + static_cast<uint64_t>(ts[1]);
                if (op == kWait) {
                    deadline = time::now_ns() + ns;  // relative, monotonic
                } else {
                    const uint64_t now = realtime ? time::realtime_ns() : time::now_ns();
                    deadline = time::now_ns() + (ns > now ? ns - now : 0);
                }
                if (deadline == 0) deadline = 1;
            }
            const uint32_t bitset = op == kWait ? 0xffffffff : static_cast<uint32_t>(a.a[5]);
            return wait(address, static_cast<uint32_t>(value), deadline, bitset);
        }
        case kWake: return futex_wake(address, value);
        case kWakeBitset:
            if (static_cast<uint32_t>(a.a[5]) == 0) return -EINVAL;
            return futex_wake(address, value, static_cast<uint32_t>(a.a[5]));
        case kRequeue: return requeue(address, value, a.a[3], a.a[4]);
        case kCmpRequeue: {
            uint32_t current;
            if (get_user(current, address) != 0) return -EFAULT;
            if (current != static_cast<uint32_t>(a.a[5])) return -EAGAIN;
            return requeue(address, value, a.a[3], a.a[4]);
        }
        case kWakeOp: return wake_op(address, value, a.a[3], a.a[4], static_cast<uint32_t>(a.a[5]));
        default: return -ENOSYS;
    }
}

}  // namespace

int64_t futex_wake(uint64_t address, uint64_t count, uint32_t bitset) {
    int64_t woken = 0;
    waiters().for_each([&](Waiter& w) {
        if (static_cast<uint64_t>(woken) >= count || w.address != address || !(w.bitset & bitset)) return;
        if (sched::wake(w.queue, 1) > 0) ++woken;
        IntrusiveList<Waiter, &Waiter::link>::remove(w);
    });
    return woken;
}

void register_futex_syscalls(SyscallHandler* t) { t[202] = sys_futex; }

}  // namespace kiln::linux
