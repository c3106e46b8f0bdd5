#include "time/clock.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "platform/platform.h"

namespace kiln::time {
namespace {

constinit uint64_t khz = 0;
constinit uint64_t boot_tsc = 0;
// ns = (ticks * mult) >> 32, precomputed so that the hot path has no division.
constinit uint64_t ns_mult = 0;
// ticks = (ns * tick_mult) >> 32, rounded up so that a deadline is never early.
constinit uint64_t tick_mult = 0;

constinit uint64_t timer_deadline_tsc = 0;
constinit TimerCallback timer_callback = nullptr;

uint64_t ticks_to_ns(uint64_t ticks) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * ns_mult) >> 32);
}

void on_timer_interrupt(arch::InterruptFrame&) {
    if (timer_callback == nullptr) return;
    if (cpu::rdtsc() < timer_deadline_tsc) {  // one-shot mode clamps long waits: not yet due
        platform::current().timer_arm(timer_deadline_tsc);
        return;
    }
    TimerCallback callback = timer_callback;
    timer_callback = nullptr;
    callback();
}

}  // namespace

void init(uint64_t tsc_khz) {
    khz = tsc_khz;
    boot_tsc = cpu::rdtsc();
    ns_mult = (1000000ull << 32) / khz;
    tick_mult = ((khz << 32) + 999999) / 1000000;
    arch::set_interrupt_handler(arch::kTimerVector, on_timer_interrupt);
    platform::current().timer_init(tsc_khz);
}

uint64_t tsc_khz() { return khz; }

namespace {
constinit uint64_t epoch_ns = 0;
}

void set_epoch(uint64_t epoch_ns_at_tsc_zero) { epoch_ns = epoch_ns_at_tsc_zero; }

uint64_t realtime_ns() { return epoch_ns + ticks_to_ns(cpu::rdtsc()); }

Parameters parameters() { return {boot_tsc, ns_mult, epoch_ns}; }

uint64_t now_ns() { return ticks_to_ns(cpu::rdtsc() - boot_tsc); }

uint64_t ns_to_ticks(uint64_t ns) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ns) * tick_mult + 0xffffffff) >> 32);
}

void set_timer(uint64_t deadline_ns, TimerCallback callback) {
    platform::IrqGuard guard;
    timer_callback = callback;
    timer_deadline_tsc = boot_tsc + ns_to_ticks(deadline_ns);
    platform::current().timer_arm(timer_deadline_tsc);
}

void cancel_timer() {
    platform::IrqGuard guard;
    timer_callback = nullptr;
    platform::current().timer_disarm();
}

namespace {
constinit volatile bool sleep_done = false;
void wake_sleeper() { sleep_done = true; }
}  // namespace

void sleep_ns(uint64_t ns) {
    sleep_done = false;
    set_timer(now_ns() + ns, wake_sleeper);
    while (!sleep_done) platform::current().wait_for_interrupt();
}

}  // namespace kiln::time
