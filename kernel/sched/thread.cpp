#include "sched/thread.h"

#include "arch/x86_64/fpu.h"
#include "arch/x86_64/gdt.h"
#include "core/panic.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/thread_info.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"
#include "platform/platform.h"
#include "time/clock.h"

extern "C" char boot_stack[];
extern "C" char boot_stack_top[];
extern "C" void context_switch(uint64_t* save_rsp, uint64_t new_rsp);
extern "C" char thread_start_kernel[];
extern "C" char thread_start_user[];

namespace kiln::sched {
namespace {

constexpr uint64_t kSliceNs = 10'000'000;
constexpr size_t kKernelStackPages = 4;

constinit Thread boot_thread;
constinit Thread* current_thread = nullptr;
constinit Thread* idle_thread = nullptr;
constinit IntrusiveList<Thread, &Thread::queue_link>* run_queue = nullptr;
constinit IntrusiveList<Thread, &Thread::timer_link>* sleepers = nullptr;
constinit IntrusiveList<Thread, &Thread::queue_link>* dead = nullptr;
constinit bool need_resched = false;
constinit uint64_t slice_end_ns = 0;
constinit int next_tid = 1;
constinit size_t threads = 1;

void on_timer();

void arm_timer() {
    uint64_t deadline = UINT64_MAX;
    if (Thread* t = sleepers->front()) deadline = t->deadline_ns;
    // The end of the time slice matters only until a switch is due; arming the timer for a
    // slice end already past would make it fire again and again before the switch happens.
    if (!run_queue->empty() && !need_resched) deadline = min(deadline, slice_end_ns);
    if (deadline == UINT64_MAX)
        time::cancel_timer();
    else
        time::set_timer(deadline, on_timer);
}

void make_runnable(Thread& t, WakeReason reason) {
    IntrusiveList<Thread, &Thread::queue_link>::remove(t);
    IntrusiveList<Thread, &Thread::timer_link>::remove(t);
    t.state = State::kRunnable;
    t.wake_reason = reason;
    run_queue->push_back(t);
}

void on_timer() {
    const uint64_t now = time::now_ns();
    bool woke = false;
    while (Thread* t = sleepers->front()) {
        if (t->deadline_ns > now) break;
        make_runnable(*t, WakeReason::kTimeout);
        woke = true;
    }
    // A sleeper whose time has come runs next (it has slept, the running thread has not); a
    // thread that used up its slice gives way to the others.
    if (woke || (now >= slice_end_ns && !run_queue->empty())) need_resched = true;
    arm_timer();
}

void add_sleeper(Thread& t) {
    // Sorted by deadline; few sleepers, so a linear insert is fine.
    Thread* before = nullptr;
    sleepers->for_each([&](Thread& s) {
        if (before == nullptr && s.deadline_ns > t.deadline_ns) before = &s;
    });
    if (before == nullptr) {
        sleepers->push_back(t);
        return;
    }
    // Insert in front of `before`.
    ListNode& n = t.timer_link;
    ListNode& b = before->timer_link;
    n.prev = b.prev;
    n.next = &b;
    b.prev->next = &n;
    b.prev = &n;
}

void free_thread(Thread& t) {
    if (t.fpu_state) mm::page_allocator().free(mm::virt_to_phys(t.fpu_state), (fpu::state_size() + 4095) / 4096);
    mm::page_allocator().free(mm::virt_to_phys(t.kernel_stack), kKernelStackPages);
    linux::release_thread_info(t.linux);
    delete &t;
}

void reap() {
    while (Thread* t = dead->front()) {
        if (t == current_thread) break;
        dead->pop_front();
        free_thread(*t);
    }
}

// Interrupts are off. Picks the next thread and switches to it.
void switch_to_next() {
    Thread* prev = current_thread;
    Thread* next = run_queue->pop_front();
    if (next == nullptr) next = idle_thread != nullptr ? idle_thread : prev;
    if (prev->state == State::kRunning) {
        if (next == idle_thread && prev != idle_thread) {
            next = prev;  // nothing else to do: keep running
        } else if (prev != idle_thread) {
            prev->state = State::kRunnable;
            run_queue->push_back(*prev);
        }
    }
    need_resched = false;
    slice_end_ns = time::now_ns() + kSliceNs;
    if (next == prev) {
        prev->state = State::kRunning;
        arm_timer();
        return;
    }
    if (prev->fpu_state) fpu::save(prev->fpu_state);
    if (next->fpu_state) fpu::restore(next->fpu_state);
    if (next->linux) platform::current().set_fs_base(next->fs_base);
    arch::set_kernel_stack(next->kernel_stack_top());
    next->state = State::kRunning;
    current_thread = next;
    arm_timer();
    context_switch(&prev->saved_rsp, next->saved_rsp);
    reap();
}

Thread* new_thread(const char* name, bool with_fpu) {
    const uint64_t stack = mm::page_allocator().allocate(kKernelStackPages);
    if (stack == 0) return nullptr;
    auto* t = new Thread;
    t->kernel_stack = static_cast<uint8_t*>(mm::phys_to_virt(stack));
    t->kernel_stack_size = kKernelStackPages * 4096;
    t->name = name;
    if (with_fpu) {
        const uint64_t area = mm::page_allocator().allocate((fpu::state_size() + 4095) / 4096);
        if (area == 0) {
            mm::page_allocator().free(stack, kKernelStackPages);
            delete t;
            return nullptr;
        }
        t->fpu_state = static_cast<uint8_t*>(mm::phys_to_virt(area));
        fpu::init_state(t->fpu_state);
    }
    return t;
}

// Lays out a new thread's stack so that context_switch "returns" into `start`, below `frame_bytes`
// reserved at the top. Six callee-saved registers, then the return address.
void prepare_stack(Thread& t, void* start, size_t frame_bytes, uint64_t r12, uint64_t r13) {
    auto* sp = reinterpret_cast<uint64_t*>(t.kernel_stack_top() - frame_bytes);
    *--sp = reinterpret_cast<uint64_t>(start);
    *--sp = 0;    // rbp
    *--sp = 0;    // rbx
    *--sp = r12;  // r12
    *--sp = r13;  // r13
    *--sp = 0;    // r14
    *--sp = 0;    // r15
    t.saved_rsp = reinterpret_cast<uint64_t>(sp);
}

}  // namespace

void init() {
    static IntrusiveList<Thread, &Thread::queue_link> run_queue_storage;
    static IntrusiveList<Thread, &Thread::timer_link> sleepers_storage;
    static IntrusiveList<Thread, &Thread::queue_link> dead_storage;
    run_queue = &run_queue_storage;
    sleepers = &sleepers_storage;
    dead = &dead_storage;
    boot_thread.kernel_stack = reinterpret_cast<uint8_t*>(boot_stack);
    boot_thread.kernel_stack_size = static_cast<size_t>(boot_stack_top - boot_stack);
    boot_thread.state = State::kRunning;
    boot_thread.name = "boot";
    current_thread = &boot_thread;
    arch::set_kernel_stack(boot_thread.kernel_stack_top());
}

Thread& current() { return *current_thread; }

size_t stack_room(uintptr_t sp) {
    if (current_thread == nullptr || current_thread->kernel_stack == nullptr) return SIZE_MAX;
    const auto base = reinterpret_cast<uintptr_t>(current_thread->kernel_stack);
    if (sp < base || sp >= base + current_thread->kernel_stack_size) return SIZE_MAX;
    return sp - base;
}

Thread* spawn_kernel(void (*entry)(void*), void* arg, const char* name) {
    Thread* t = new_thread(name, false);
    if (t == nullptr) return nullptr;
    // Kernel threads have no Linux identity: thread ids belong to the application, whose main
    // thread must be 1, its pid.
    t->tid = 0;
    prepare_stack(*t, thread_start_kernel, 0, reinterpret_cast<uint64_t>(entry), reinterpret_cast<uint64_t>(arg));
    platform::IrqGuard guard;
    ++threads;
    make_runnable(*t, WakeReason::kNone);
    return t;
}

Thread* spawn_user(const arch::InterruptFrame& frame, linux::ThreadInfo* info, uint64_t fs_base) {
    Thread* t = new_thread("user", true);
    if (t == nullptr) return nullptr;
    t->tid = next_tid++;
    t->linux = info;
    t->fs_base = fs_base;
    memcpy(&t->user_frame(), &frame, sizeof(frame));
    prepare_stack(*t, thread_start_user, sizeof(arch::InterruptFrame), 0, 0);
    platform::IrqGuard guard;
    ++threads;
    make_runnable(*t, WakeReason::kNone);
    if (current_thread->linux) need_resched = true;  // let the new thread run soon
    arm_timer();
    return t;
}

void yield() {
    platform::IrqGuard guard;
    switch_to_next();
}

void preempt_if_needed() {
    platform::IrqGuard guard;
    if (need_resched) switch_to_next();
}

bool runnable_threads_waiting() { return !run_queue->empty(); }

void request_preemption() { need_resched = true; }

WakeReason wait(WaitQueue& queue, uint64_t deadline_ns, bool interruptible) {
    platform::IrqGuard guard;
    Thread& self = *current_thread;
    if (interruptible && self.linux && linux::signal_pending(*self.linux)) return WakeReason::kInterrupted;
    if (deadline_ns != 0 && deadline_ns <= time::now_ns()) return WakeReason::kTimeout;
    self.state = State::kBlocked;
    self.wake_reason = WakeReason::kNone;
    self.interruptible = interruptible;
    queue.waiters_.push_back(self);
    if (deadline_ns != 0) {
        self.deadline_ns = deadline_ns;
        add_sleeper(self);
    }
    switch_to_next();
    return self.wake_reason;
}

size_t wake(WaitQueue& queue, size_t count) {
    platform::IrqGuard guard;
    size_t woken = 0;
    while (woken < count) {
        Thread* t = queue.waiters_.front();
        if (t == nullptr) break;
        make_runnable(*t, WakeReason::kWoken);
        ++woken;
    }
    if (woken > 0) arm_timer();
    return woken;
}

void interrupt(Thread& thread) {
    platform::IrqGuard guard;
    if (thread.state == State::kBlocked && thread.interruptible) {
        make_runnable(thread, WakeReason::kInterrupted);
        arm_timer();
    }
}

void sleep_until(uint64_t deadline_ns) {
    WaitQueue nobody;
    while (wait(nobody, deadline_ns, false) != WakeReason::kTimeout) {
    }
}

void exit_current() {
    platform::irq_disable();
    Thread& self = *current_thread;
    self.state = State::kDead;
    IntrusiveList<Thread, &Thread::timer_link>::remove(self);
    dead->push_back(self);
    --threads;
    switch_to_next();
    panic("a dead thread ran again");
}

void idle_forever() {
    idle_thread = current_thread;
    for (;;) {
        platform::irq_disable();
        reap();
        if (run_queue->empty()) {
            platform::current().wait_for_interrupt();
        } else {
            switch_to_next();
        }
    }
}

size_t thread_count() { return threads; }

}  // namespace kiln::sched

// Called from thread_start_kernel (entry.S).
extern "C" void thread_enable_interrupts() { kiln::platform::irq_enable(); }
extern "C" void thread_exit_kernel() { kiln::sched::exit_current(); }
