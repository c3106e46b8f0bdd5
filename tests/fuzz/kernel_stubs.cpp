// What the kernel's network stack needs from the rest of the kernel, for running it on the host
// under libFuzzer: a heap on malloc, a clock that ticks per call, schedulers and devices that do
// nothing. Only the parsers and protocol state machines are real.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "console/console.h"
#include "core/boot_env.h"
#include "core/panic.h"
#include "drivers/hostcall.h"
#include "fs/file.h"
#include "fs/pipe.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "linux/user_memory.h"
#include "mm/heap.h"
#include "net/arp.h"
#include "net/stack.h"
#include "platform/platform.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln {

namespace heap {
void* allocate(size_t size) { return std::malloc(size); }
void free(void* p) { std::free(p); }
Stats stats() { return {}; }
}  // namespace heap

namespace console {
namespace {
class NullSink final : public Sink {
  public:
    void write(const char*, size_t) override {}
};
NullSink null_sink;
}  // namespace
void set_backend(Backend) {}
void write(const char*, size_t) {}
void write_block(const char*, size_t) {}
void flush() {}
Sink& sink() { return null_sink; }
}  // namespace console

void power_off(int status) { std::exit(status); }
void panic_now() { std::abort(); }

BootEnv& boot_env() {
    static BootEnv env;
    return env;
}

namespace hostcall {
void ready(uint32_t, uint16_t) {}
}  // namespace hostcall

namespace time {
uint64_t now_ns() {
    static uint64_t now = 1'000'000'000;
    return now += 1000;
}
}  // namespace time

namespace platform {
namespace {
class HostBackend final : public Backend {
  public:
    const char* name() const override { return "host"; }
    Kind kind() const override { return Kind::kHw; }
    void irq_disable() override {}
    void irq_enable() override {}
    bool irq_enabled() const override { return true; }
    void wait_for_interrupt() override {}
};
HostBackend backend;
}  // namespace
Backend& current() { return backend; }
uint64_t Backend::read_msr(uint32_t) { return 0; }
void Backend::write_msr(uint32_t, uint64_t) {}
void Backend::load_page_table(uint64_t) {}
void Backend::flush_tlb_page(uintptr_t) {}
uint64_t Backend::fault_address() { return 0; }
void Backend::out8(uint16_t, uint8_t) {}
void Backend::out32(uint16_t, uint32_t) {}
uint8_t Backend::in8(uint16_t) { return 0xff; }
uint64_t Backend::enable_user_features(bool, uint64_t, bool) { return 0; }
void Backend::set_fs_base(uint64_t) {}
void Backend::load_gdt(const void*, uint16_t) {}
void Backend::load_idt(const void*, uint16_t) {}
void Backend::load_task_register(uint16_t) {}
void Backend::timer_init(uint64_t) {}
void Backend::timer_arm(uint64_t) {}
void Backend::timer_disarm() {}
void Backend::end_of_interrupt() {}
const char* Backend::timer_description() { return "none"; }
}  // namespace platform

namespace sched {
WakeReason wait(WaitQueue&, uint64_t, bool) { return WakeReason::kWoken; }
size_t wake(WaitQueue&, size_t) { return 0; }
void interrupt(Thread&) {}
void request_preemption() {}
}  // namespace sched

namespace fs {
void random_bytes(void* buffer, size_t size) { std::memset(buffer, 0x5a, size); }
sched::WaitQueue& poll_waiters() {
    static sched::WaitQueue queue;
    return queue;
}
void notify_readiness_changed(File& file) { file.readiness_changed(); }
}  // namespace fs

namespace linux {
int copy_from_user(void*, uint64_t, size_t) { return -14; }
int copy_to_user(uint64_t, const void*, size_t) { return -14; }
ThreadInfo* current_info() { return nullptr; }
void send_signal(ThreadInfo&, int) {}
}  // namespace linux

namespace net {
void schedule_timer(uint64_t) {}
void loop_back(Packet* packet) { free_packet(packet); }
void queue_loopback(Packet* packet) { free_packet(packet); }
}  // namespace net

}  // namespace kiln
