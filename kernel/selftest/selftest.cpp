#include "selftest/selftest.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "console/console.h"
#include "drivers/block/device.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::selftest {
namespace {

// Set by a global constructor: proves .init_array ran.
struct ConstructorProbe {
    ConstructorProbe() : value(0x6b696c6e) {}
    volatile uint32_t value;
};
ConstructorProbe constructor_probe;

class Checker {
  public:
    void check(bool ok, StringView what) {
        console::print("selftest: {} {}\n", ok ? "ok  " : "FAIL", what);
        if (!ok) ++failures_;
    }
    bool passed() const { return failures_ == 0; }

  private:
    int failures_ = 0;
};

// A small deterministic generator for sizes and fill patterns.
uint64_t next_random(uint64_t& state) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

void test_page_allocator(Checker& c) {
    auto& pages = mm::page_allocator();
    const size_t free_before = pages.free_pages();
    constexpr size_t kCount = 64;
    uint64_t got[kCount];
    bool ok = true;
    for (size_t i = 0; i < kCount; ++i) {
        got[i] = pages.allocate();
        ok = ok && got[i] != 0 && got[i] % mm::kPageSize == 0 && got[i] >= (1u << 20);
        if (ok) *static_cast<volatile uint64_t*>(mm::phys_to_virt(got[i])) = i;
    }
    for (size_t i = 0; ok && i < kCount; ++i) {
        ok = *static_cast<volatile uint64_t*>(mm::phys_to_virt(got[i])) == i;
        for (size_t j = 0; j < i; ++j) ok = ok && got[i] != got[j];
    }
    c.check(ok, "page allocator: 64 distinct, aligned, writable pages");
    for (size_t i = 0; i < kCount; ++i)
        if (got[i] != 0) pages.free(got[i]);
    const uint64_t run = pages.allocate(16);
    c.check(run != 0 && pages.free_pages() == free_before - 16, "page allocator: 16 contiguous pages");
    if (run != 0) pages.free(run, 16);
    c.check(pages.free_pages() == free_before, "page allocator: every page returned");
}

void test_heap(Checker& c) {
    const heap::Stats before = heap::stats();
    constexpr size_t kBlocks = 512;
    struct Block {
        uint8_t* data;
        size_t size;
        uint8_t fill;
    };
    static Block blocks[kBlocks];  // 12 KiB: too much for the boot stack
    uint64_t state = 0x9e3779b97f4a7c15;
    bool ok = true;
    for (size_t i = 0; i < kBlocks; ++i) {
        size_t size = 1 + next_random(state) % (i % 8 == 0 ? 20000 : 700);
        auto* data = static_cast<uint8_t*>(heap::allocate(size));
        ok = ok && data != nullptr && reinterpret_cast<uintptr_t>(data) % 16 == 0;
        if (data == nullptr) {
            blocks[i] = {nullptr, 0, 0};
            continue;
        }
        uint8_t fill = static_cast<uint8_t>(i);
        for (size_t j = 0; j < size; ++j) data[j] = fill;
        blocks[i] = {data, size, fill};
    }
    for (size_t i = 0; i < kBlocks && ok; ++i)
        for (size_t j = 0; j < blocks[i].size; ++j) ok = ok && blocks[i].data[j] == blocks[i].fill;
    c.check(ok, "heap: 512 blocks of 1..20000 bytes, aligned, no overlap");
    for (size_t i = 0; i < kBlocks; ++i) heap::free(blocks[i].data);
    const heap::Stats after = heap::stats();
    c.check(after.small_blocks_in_use == before.small_blocks_in_use &&
                after.large_pages_in_use == before.large_pages_in_use,
            "heap: everything freed");

    struct Object {
        explicit Object(int v) : value(v) {}
        int value;
    };
    Object* object = new Object(42);
    const bool constructed = object->value == 42;
    delete object;
    c.check(constructed, "heap: new and delete");
    c.check(constructor_probe.value == 0x6b696c6e, "C++ runtime: global constructors ran");
}

bool invalid_opcode_recovers() {
    asm volatile("1: ud2\n2:\n" KILN_EXTABLE("1b", "2b"));
    return arch::last_fixup_vector() == 6;
}

bool page_fault_recovers() {
    uint64_t value = 0;
    const uint64_t unmapped = 0x00007f0000000000;  // a PML4 slot nothing maps
    asm volatile("1: mov (%1), %0\n2:\n" KILN_EXTABLE("1b", "2b") : "+r"(value) : "r"(unmapped) : "memory");
    return arch::last_fixup_vector() == 14;
}

bool divide_error_recovers() {
    uint64_t divisor = 0;
    asm volatile("xor %%edx, %%edx\n mov $1, %%eax\n1: divq %0\n2:\n" KILN_EXTABLE("1b", "2b")
                 :
                 : "r"(divisor)
                 : "rax", "rdx");
    return arch::last_fixup_vector() == 0;
}

void test_exceptions(Checker& c) {
    c.check(invalid_opcode_recovers(), "exceptions: #UD delivered through the IDT and recovered");
    c.check(page_fault_recovers(), "exceptions: #PF delivered through the IDT and recovered");
    c.check(divide_error_recovers(), "exceptions: #DE delivered through the IDT and recovered");
}

// What the interrupt path's overflow check (arch/x86_64/interrupts.cpp) measures: the room below
// a stack address, on the running thread's stack only.
void test_stack_room(Checker& c) {
    const auto& self = sched::current();
    const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    const size_t room = sched::stack_room(here);
    c.check(room > 0 && room < self.kernel_stack_size, "stack: the room left on this thread's stack");
    const auto base = reinterpret_cast<uintptr_t>(self.kernel_stack);
    c.check(sched::stack_room(base + 100) == 100, "stack: measured from its lowest byte");
    c.check(sched::stack_room(base - 1) == SIZE_MAX && sched::stack_room(self.kernel_stack_top()) == SIZE_MAX,
            "stack: an address off it is not on it");
}

void test_timer(Checker& c) {
    constexpr uint64_t kSleepNs = 2'000'000;
    constexpr int kRounds = 5;
    uint64_t worst_late = 0;
    bool never_early = true;
    for (int i = 0; i < kRounds; ++i) {
        const uint64_t start = time::now_ns();
        time::sleep_ns(kSleepNs);
        const uint64_t elapsed = time::now_ns() - start;
        if (elapsed < kSleepNs) never_early = false;
        if (elapsed > kSleepNs && elapsed - kSleepNs > worst_late) worst_late = elapsed - kSleepNs;
    }
    console::print("selftest: timer: 5 sleeps of 2 ms, latest wake-up {} us after its deadline\n", worst_late / 1000);
    c.check(never_early, "timer: the LAPIC timer never fires before its deadline");
    c.check(worst_late < 50'000'000, "timer: every wake-up within 50 ms of its deadline");

    // Does the LAPIC timer agree with the TSC over a longer interval? Measured by the TSC itself.
    const uint64_t tsc_start = cpu::rdtsc();
    time::sleep_ns(20'000'000);
    const uint64_t tsc_elapsed = cpu::rdtsc() - tsc_start;
    const uint64_t expected = time::tsc_khz() * 20;
    console::print("selftest: timer: 20 ms sleep took {} TSC ticks, {} expected\n", tsc_elapsed, expected);
    c.check(tsc_elapsed >= expected, "timer: a 20 ms sleep lasts at least 20 ms of TSC time");
}

}  // namespace

// Each volume (--volume): its first and last sectors read; on a writable one, a pattern written
// over the last two sectors, read back, the old contents put back and flushed: the file ends as it
// began.
void test_block_devices(Checker& c) {
    constexpr size_t kBytes = 2 * block::kSectorSize;
    auto* saved = static_cast<uint8_t*>(heap::allocate(kBytes));
    auto* buffer = static_cast<uint8_t*>(heap::allocate(kBytes));
    if (saved == nullptr || buffer == nullptr) return;
    for (size_t i = 0; i < block::device_count(); ++i) {
        block::Device& d = *block::device(i);
        const uint64_t sectors = d.sector_count();
        console::print("selftest: block: {} has {} sectors{}\n", d.name(), sectors, d.read_only() ? ", read-only" : "");
        if (sectors < 2) continue;
        const uint64_t last = sectors - 2;
        c.check(d.read(0, buffer, block::kSectorSize) == 0 && d.read(last, saved, kBytes) == 0,
                "block: the first and last sectors read");
        c.check(d.read(sectors - 1, buffer, kBytes) != 0, "block: a read past the end refused");
        if (d.read_only()) {
            c.check(d.write(last, saved, kBytes) != 0, "block: a write to a read-only volume refused");
            continue;
        }
        for (size_t b = 0; b < kBytes; ++b) buffer[b] = static_cast<uint8_t>(b * 7 + i);
        bool ok = d.write(last, buffer, kBytes) == 0;
        memset(buffer, 0, kBytes);
        ok = ok && d.read(last, buffer, kBytes) == 0;
        for (size_t b = 0; ok && b < kBytes; ++b) ok = buffer[b] == static_cast<uint8_t>(b * 7 + i);
        c.check(ok, "block: a pattern written and read back");
        c.check(d.write(last, saved, kBytes) == 0 && d.flush() == 0, "block: the old contents written back, flushed");
    }
    heap::free(saved);
    heap::free(buffer);
}

bool run() {
    Checker c;
    test_block_devices(c);
    test_page_allocator(c);
    test_heap(c);
    test_exceptions(c);
    test_stack_room(c);
    test_timer(c);
    console::print("selftest: {}\n", c.passed() ? "passed" : "FAILED");
    return c.passed();
}

}  // namespace kiln::selftest
