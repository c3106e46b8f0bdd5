// kiln_start: from boot.S's jump into C++ to the end of the VM.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/fpu.h"
#include "arch/x86_64/interrupts.h"
#include "console/console.h"
#include "core/boot_env.h"
#include "core/diagnostics.h"
#include "core/panic.h"
#include "drivers/block/start.h"
#include "drivers/hostcall.h"
#include "kiln/hostcall.h"
#include "linux/linux.h"
#include "linux/process.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"
#include "platform/platform.h"
#include "sched/thread.h"
#include "selftest/selftest.h"
#include "time/clock.h"

namespace kiln {

void run_global_constructors();

namespace {

constinit BootEnv env_instance;

// Guest-physical memory below 4 GiB, read through the direct map.
class DirectMapMemory final : public PhysicalMemory {
  public:
    bool read(uint64_t phys, void* out, size_t size) const override {
        if (phys >= mm::kDirectMapSize || size > mm::kDirectMapSize - phys) return false;
        const auto* src = static_cast<const char*>(mm::phys_to_virt(phys));
        auto* dst = static_cast<char*>(out);
        for (size_t i = 0; i < size; ++i) dst[i] = src[i];
        return true;
    }
};

void load_boot_info(uint32_t start_info_phys) {
    BootEnv& env = env_instance;
    DirectMapMemory memory;
    BootInfoError error = parse_boot_info(memory, start_info_phys, env.boot_info);
    if (error != BootInfoError::kNone) panic("boot info: {}", describe(error));
    Cmdline::Error cmdline_error = env.cmdline.parse({env.boot_info.cmdline, env.boot_info.cmdline_length});
    if (cmdline_error != Cmdline::Error::kNone) panic("{}", Cmdline::describe(cmdline_error));
    for (size_t i = 0; i < env.boot_info.region_count; ++i)
        if (env.boot_info.regions[i].usable) env.memory_bytes += env.boot_info.regions[i].size;
    env.under_kiln_vmm = env.cmdline.has("kiln.vmm");
}

// kiln-vmm and kiln-proc name themselves in `kiln.vmm=`.
StringView monitor_name() {
    StringView name;
    return env_instance.cmdline.find("kiln.vmm", name) && !name.empty() ? name : StringView("qemu");
}

}  // namespace

BootEnv& boot_env() { return env_instance; }

// Loaded as absolute values: the symbols are physical addresses, which RIP-relative code (the
// proc build's) cannot reach.
uint64_t mm::kernel_phys_start() {
    uint64_t value;
    asm("movabs $_kernel_phys_start, %0" : "=r"(value));
    return value;
}
uint64_t mm::kernel_phys_end() {
    uint64_t value;
    asm("movabs $_kernel_phys_end, %0" : "=r"(value));
    return value;
}

extern "C" [[noreturn]] void kiln_start(uint32_t start_info_phys, uint32_t platform_kind) {
    env_instance.entry_tsc = cpu::rdtsc();
    platform::init(platform_kind == KILN_BOOT_PLATFORM_PVM    ? platform::Kind::kPvm
                   : platform_kind == KILN_BOOT_PLATFORM_PROC ? platform::Kind::kProc
                                                              : platform::Kind::kHw);
    arch::init_cpu_tables();
    load_boot_info(start_info_phys);
    BootEnv& env = env_instance;
    const bool trace_boot = env.cmdline.flag("kiln.trace_boot");
    if (env.under_kiln_vmm) {
        console::set_backend(console::Backend::kHostcall);
        if (trace_boot) hostcall::boot_timestamp(abi::BootStage::kNative);
    }

    mm::page_allocator().init(env.boot_info, mm::kernel_phys_start(), mm::kernel_phys_end());
    run_global_constructors();

    const time::FrequencySource tsc = time::find_tsc_frequency(env.cmdline);
    time::init(tsc.tsc_khz);
    uint64_t epoch_ns = 0;
    if (env.cmdline.number("kiln.epoch_ns", epoch_ns)) time::set_epoch(epoch_ns);
    StringView fpu_mode;
    fpu::init(!(env.cmdline.find("kiln.fpu", fpu_mode) && fpu_mode == "fxsave"));
    sched::init();

    // The banner would mix with the application's output, so with an application it is opt-in.
    if (!env.cmdline.has_app() || env.cmdline.flag("kiln.verbose"))
        console::print("Kiln kernel: platform {}, monitor {}, {} MiB, tsc {} kHz ({}), timer {}\n",
                       platform::current().name(), monitor_name(), env.memory_bytes >> 20, tsc.tsc_khz, tsc.source,
                       platform::current().timer_description());
    if (env.cmdline.flag("kiln.verbose"))
        console::print("cmdline: {}\n", StringView(env.boot_info.cmdline, env.boot_info.cmdline_length));
    if (env.cmdline.flag("kiln.verbose"))
        console::print("fpu: {}, xcr0 {:#x}, {} bytes per thread\n", fpu::uses_xsave() ? "xsave" : "fxsave",
                       fpu::enabled_features(), fpu::state_size());
    if (env.under_kiln_vmm && trace_boot) hostcall::boot_timestamp(abi::BootStage::kMain);

    diagnostics::run(env.cmdline);
    // The volumes' block devices: before the self-tests and linux::init, whose file systems
    // mount them.
    block::start_devices(env.cmdline);
    if (env.cmdline.flag("kiln.selftest")) power_off(selftest::run() ? 0 : 1);
    if (!linux::init(env.cmdline, env.boot_info)) power_off(linux::kExitCannotStart);
    platform::current().start_control_channel();
    if (!env.cmdline.has_app()) {
        console::print("Hello from the Kiln kernel\n");
        power_off(0);
    }
    if (!linux::start_application(env.cmdline)) power_off(linux::kExitCannotStart);
    if (env.under_kiln_vmm && trace_boot) hostcall::boot_timestamp(abi::BootStage::kAppStart);
    sched::idle_forever();
}

}  // namespace kiln
