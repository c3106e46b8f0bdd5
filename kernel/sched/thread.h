// Threads and the scheduler: kernel threads and application threads on one vCPU, round robin,
// preempted by the LAPIC timer (on the way back to user mode; kernel code is not preemptible).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/interrupts.h"
#include "lib/intrusive_list.h"

namespace kiln::linux {
struct ThreadInfo;
}

namespace kiln::sched {

enum class State { kRunnable, kRunning, kBlocked, kDead };
enum class WakeReason { kNone, kWoken, kTimeout, kInterrupted };

struct Thread {
    ListNode queue_link;  // the run queue, or the wait queue it sleeps on
    ListNode timer_link;  // the sleepers sorted by deadline
    uint64_t saved_rsp = 0;
    uint8_t* kernel_stack = nullptr;
    size_t kernel_stack_size = 0;
    uint8_t* fpu_state = nullptr;  // the application's FPU/SSE/AVX registers while switched out
    uint64_t fs_base = 0;
    int tid = 0;
    State state = State::kRunnable;
    WakeReason wake_reason = WakeReason::kNone;
    uint64_t deadline_ns = 0;
    bool interruptible = false;
    const char* name = "";
    linux::ThreadInfo* linux = nullptr;  // set for application threads

    uint64_t kernel_stack_top() const { return reinterpret_cast<uint64_t>(kernel_stack + kernel_stack_size); }
    // The user-mode register frame at the top of the kernel stack (application threads).
    arch::InterruptFrame& user_frame() const {
        return *reinterpret_cast<arch::InterruptFrame*>(kernel_stack_top() - sizeof(arch::InterruptFrame));
    }
};

class WaitQueue {
  public:
    bool empty() const { return waiters_.empty(); }

  private:
    IntrusiveList<Thread, &Thread::queue_link> waiters_;
    friend WakeReason wait(WaitQueue&, uint64_t, bool);
    friend size_t wake(WaitQueue&, size_t);
    friend void interrupt(Thread&);
};

// Adopts the boot context as the first kernel thread.
void init();
Thread& current();
// The bytes left below `sp` on the running thread's kernel stack; SIZE_MAX if `sp` is not on it
// (an IST stack, or before the scheduler starts).
size_t stack_room(uintptr_t sp);

// A kernel thread running entry(arg).
Thread* spawn_kernel(void (*entry)(void*), void* arg, const char* name);
// An application thread that enters user mode with `frame` (copied to its kernel stack).
Thread* spawn_user(const arch::InterruptFrame& frame, linux::ThreadInfo* info, uint64_t fs_base);

void yield();
// Switches to another runnable thread if the current one should give way; called on the way
// back to user mode.
void preempt_if_needed();
bool runnable_threads_waiting();
// Asks for a switch at the next return to user mode (a woken thread should run soon).
void request_preemption();

// Blocks the current thread on `queue` until woken, until `deadline_ns` (0: none) passes, or,
// if `interruptible`, until a signal arrives for it. The caller checks its condition again after.
WakeReason wait(WaitQueue& queue, uint64_t deadline_ns, bool interruptible);
// Wakes up to `count` waiters; returns how many.
size_t wake(WaitQueue& queue, size_t count = SIZE_MAX);
// Wakes a thread from an interruptible wait (a signal arrived).
void interrupt(Thread& thread);
void sleep_until(uint64_t deadline_ns);

// Ends the current thread; its stacks are freed once another thread runs.
[[noreturn]] void exit_current();

// The idle loop of the boot thread once the application runs.
[[noreturn]] void idle_forever();

size_t thread_count();

}  // namespace kiln::sched
