#include "machine.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "boot/cmdline.h"
#include "boot/layout.h"
#include "boot/loader.h"
#include "devices/virtio/block.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "kiln/hostcall.h"
#include "util/error.h"
#include "util/volume_file.h"

namespace kiln::vmm {
namespace {

using Clock = std::chrono::steady_clock;

// SIGUSR1 only interrupts KVM_RUN (installed without SA_RESTART); the handler has nothing to do.
constexpr int kKickSignal = SIGUSR1;
void on_kick(int) {}

void install_kick_handler() {
    struct sigaction sa {};
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    sigaction(kKickSignal, &sa, nullptr);
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

const char* exit_reason_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_UNKNOWN: return "unknown";
        case KVM_EXIT_EXCEPTION: return "exception";
        case KVM_EXIT_HLT: return "hlt";
        case KVM_EXIT_MMIO: return "mmio";
        case KVM_EXIT_SHUTDOWN: return "shutdown (triple fault)";
        case KVM_EXIT_FAIL_ENTRY: return "failed entry";
        case KVM_EXIT_INTERNAL_ERROR: return "internal error";
        case KVM_EXIT_SYSTEM_EVENT: return "system event";
        default: return "unexpected";
    }
}

}  // namespace

Machine::Machine(const Options& options) : options_(options), started_(Clock::now()), console_(options.console) {
    if (options.restore.empty())
        boot();
    else
        restore_from(options.restore);
    control_port_ = std::make_unique<ControlPort>(*memory_, console_, static_cast<ControlPortListener&>(*this));
    if (!options.control.empty())
        control_ = std::make_unique<ControlSocket>(options.control, event_loop_,
                                                   [this](const nlohmann::json& r) { return handle_control(r); });
    io_bus_.add(Serial::kCom1, Serial::kPorts, serial_);
    io_bus_.add(abi::kHostcallPort, 4, *control_port_);
    pause_requested_ = options.paused;  // the vCPUs park before their first entry, until a resume
    setup_done_ = Clock::now();
}

void Machine::boot() {
    const Options& options = options_;
    // Everything about the images is checked before KVM is touched: a bad image is a clear
    // error on any machine, with or without KVM.
    kernel_file_ = MappedFile(options.kernel, "kernel image");
    kernel_ = ElfImage::parse(kernel_file_.bytes(), options.kernel);
    if (!options.initrd.empty()) initrd_file_ = MappedFile(options.initrd, "initrd");
    const bool initrd_mappable = initrd_file_.bytes().size() <= layout::kInitrdMappedMax;
    check_memory_fits(*kernel_, initrd_mappable ? 0 : initrd_file_.bytes().size(), options.memory_bytes);
    auto boot = make_boot_protocol(*kernel_, options.boot);
    boot_protocol_name_ = boot->name();

    kvm_ = std::make_unique<Kvm>();
    vm_ = std::make_unique<Vm>(*kvm_);
    memory_ = std::make_unique<GuestMemory>(options.memory_bytes);
    vm_->register_memory(*memory_);  // before the irqchip: ARCHITECTURE.md §0
    uint64_t initrd_at = 0;
    if (!initrd_file_.bytes().empty() && initrd_mappable &&
        vm_->map_readonly(layout::kInitrdMapped, initrd_file_.bytes().data(), initrd_file_.bytes().size()))
        initrd_at = layout::kInitrdMapped;
    else if (!initrd_file_.bytes().empty())
        check_memory_fits(*kernel_, initrd_file_.bytes().size(), options.memory_bytes);
    initrd_mapped_ = initrd_at != 0;
    vm_->create_irqchip();

    cpuid_ = kvm_->supported_cpuid();
    vcpus_.push_back(std::make_unique<Vcpu>(*vm_, 0));
    for (auto& vcpu : vcpus_) vcpu->set_cpuid(cpuid_);
    tsc_khz_ = vcpus_[0]->tsc_khz();
    // KVM starts a new vCPU's TSC at zero: the wall clock now is the guest's time at TSC zero.
    timespec wall{};
    clock_gettime(CLOCK_REALTIME, &wall);
    const uint64_t epoch_ns = static_cast<uint64_t>(wall.tv_sec) * 1000000000ull + static_cast<uint64_t>(wall.tv_nsec);

    std::vector<std::string> params = {"kiln.vmm=kiln-vmm", "kiln.epoch_ns=" + std::to_string(epoch_ns)};
    if (tsc_khz_ != 0) params.push_back("kiln.tsc_khz=" + std::to_string(tsc_khz_));
    std::vector<uint32_t> types = {abi::virtio::kRng};
    for (size_t i = 0; i < options.nets.size(); ++i) types.push_back(abi::virtio::kNet);
    for (size_t i = 0; i < options.volumes.size(); ++i) types.push_back(abi::virtio::kBlock);
    for (auto& p : add_virtio_devices(types, options.nets, options.volumes)) params.push_back(std::move(p));
    if (!options.nets.empty()) guest_ipv4_ = guest_ipv4(options.cmdline);
    BootPayload payload{compose_cmdline(options.cmdline, params), initrd_file_.bytes(), initrd_at};
    const uint64_t start_info = load_kernel(*memory_, *kernel_, payload);
    boot->prepare(*memory_, *vcpus_[0], cpuid_, start_info);
}

Machine::~Machine() {
    kick_vcpus();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    event_loop_.stop();
}

std::vector<std::string> Machine::add_virtio_devices(const std::vector<uint32_t>& types,
                                                     const std::vector<NetOptions>& nets,
                                                     const std::vector<VolumeOptions>& volumes) {
    // virtio-mmio windows in the 32-bit hole, one page each; interrupts on IOAPIC pins from 5.
    constexpr uint64_t kMmioBase = 0xd0000000;
    constexpr uint32_t kFirstGsi = 5;
    std::vector<std::unique_ptr<virtio::Device>> devices;
    size_t next_net = 0, next_volume = 0;
    for (uint32_t type : types) {
        if (type == abi::virtio::kRng) {
            devices.push_back(std::make_unique<virtio::Rng>());
        } else if (type == abi::virtio::kNet) {
            if (next_net >= nets.size())
                throw VmmError("the snapshot has a network card: give it one with --net tap=NAME");
            const NetOptions& net = nets[next_net++];
            devices.push_back(std::make_unique<virtio::Net>(Tap::open(net.tap), net.mac, event_loop_, net.faults));
        } else if (type == abi::virtio::kBlock) {
            if (next_volume >= volumes.size())
                throw VmmError("the snapshot has " + std::to_string(next_volume + 1) +
                               " or more volumes: give each again with --volume path=FILE, in the same order");
            const uint32_t index = static_cast<uint32_t>(next_volume);
            devices.push_back(std::make_unique<virtio::Block>(open_volume(volumes[next_volume++]), index));
        } else {
            throw VmmError("unknown virtio device type " + std::to_string(type));
        }
    }
    if (next_volume < volumes.size())
        throw VmmError("--volume: " + std::to_string(volumes.size()) + " volumes given, the snapshot has " +
                       std::to_string(next_volume));
    // The I/O APIC has 24 pins.
    constexpr uint32_t kLastGsi = 23;
    if (virtio_devices_.size() + devices.size() > kLastGsi - kFirstGsi + 1)
        throw VmmError("too many devices: " + std::to_string(virtio_devices_.size() + devices.size()) +
                       " virtio devices (the entropy source, networks, volumes); at most " +
                       std::to_string(kLastGsi - kFirstGsi + 1));
    std::vector<std::string> params;
    for (auto& device : devices) {
        const size_t index = virtio_devices_.size();
        const uint64_t base = kMmioBase + index * abi::virtio::kMmioSize;
        auto transport = std::make_unique<virtio::MmioTransport>(std::move(device), *memory_, *vm_, event_loop_, base,
                                                                 kFirstGsi + static_cast<uint32_t>(index));
        mmio_bus_.add(base, abi::virtio::kMmioSize, *transport);
        params.push_back(transport->cmdline_parameter());
        virtio_devices_.push_back(std::move(transport));
    }
    return params;
}

int Machine::run() {
    install_kick_handler();
    // SIGTERM and SIGINT end the VM promptly (stats still printed); one thread waits for them,
    // every other thread (vCPUs, devices) has them blocked.
    sigset_t terminate;
    sigemptyset(&terminate);
    sigaddset(&terminate, SIGTERM);
    sigaddset(&terminate, SIGINT);
    pthread_sigmask(SIG_BLOCK, &terminate, nullptr);
    std::thread([this, terminate] {
        int signal = 0;
        if (sigwait(&terminate, &signal) == 0)
            finish({128 + signal, signal == SIGTERM ? "terminated (SIGTERM)" : "interrupted (SIGINT)", false});
    }).detach();
    event_loop_.start();
    for (auto& vcpu : vcpus_) threads_.emplace_back([this, &vcpu] { vcpu_thread(*vcpu); });

    std::unique_lock lock(mutex_);
    auto done = [this] { return outcome_.has_value(); };
    if (options_.timeout) {
        if (!finished_cv_.wait_for(lock, *options_.timeout, done)) {
            const double seconds = static_cast<double>(options_.timeout->count()) / 1000.0;
            char reason[96];
            std::snprintf(reason, sizeof(reason), "watchdog: the guest ran longer than --timeout %.3g s", seconds);
            outcome_ = Outcome{abi::kExitTimeout, reason, true};
        }
    } else {
        finished_cv_.wait(lock, done);
    }
    const Outcome outcome = *outcome_;
    lock.unlock();

    kick_vcpus();
    for (auto& t : threads_) t.join();
    threads_.clear();
    serial_.flush();

    if (!outcome.reason.empty()) {
        std::string report = "kiln-vmm: " + outcome.reason + "\n";
        if (outcome.dump_registers)
            for (auto& vcpu : vcpus_) report += vcpu->describe_state();
        std::cerr << report << std::flush;
    }
    if (options_.stats) print_stats();
    return outcome.status;
}

void Machine::kick_vcpus() {
    stopping_ = true;
    for (size_t i = 0; i < threads_.size(); ++i) {
        if (!threads_[i].joinable()) continue;
        vcpus_[i]->request_exit();
        pthread_kill(threads_[i].native_handle(), kKickSignal);
    }
}

void Machine::finish(Outcome outcome) {
    {
        std::lock_guard lock(mutex_);
        if (outcome_) return;  // the first outcome wins
        outcome_ = outcome;
    }
    if (control_) control_->broadcast({{"event", "exited"}, {"status", outcome.status}});
    stopping_ = true;
    {
        std::lock_guard lock(pause_mutex_);  // parked vCPUs must see stopping_
    }
    pause_cv_.notify_all();
    finished_cv_.notify_all();
}

void Machine::park_if_paused() {
    std::unique_lock lock(pause_mutex_);
    if (!pause_requested_) return;
    ++vcpus_parked_;
    pause_cv_.notify_all();
    pause_cv_.wait(lock, [this] { return !pause_requested_ || stopping_; });
    --vcpus_parked_;
}

void Machine::pause_vcpus() {
    std::unique_lock lock(pause_mutex_);
    pause_requested_ = true;
    lock.unlock();
    for (size_t i = 0; i < threads_.size(); ++i) {
        vcpus_[i]->request_exit();
        pthread_kill(threads_[i].native_handle(), kKickSignal);
    }
    lock.lock();
    pause_cv_.wait(lock, [this] { return vcpus_parked_ == threads_.size() || stopping_; });
}

void Machine::resume_vcpus() {
    {
        std::lock_guard lock(pause_mutex_);
        pause_requested_ = false;
    }
    pause_cv_.notify_all();
}

nlohmann::json Machine::stats_json() const {
    nlohmann::json s;
    s["state"] = stopping_ ? "stopped" : (pause_requested_ ? "paused" : "running");
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
        if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        std::fclose(f);
    }
    s["rss_bytes"] = resident * 4096;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    s["cpu_time_us"] =
        (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    s["memory_bytes"] = options_.memory_bytes;
    // Exits of every vCPU, in all and by reason: KVM's own counters (binary statistics) for the
    // reasons it counts, which include the exits kiln-vmm handles (io, mmio), and the hypercalls
    // and instructions KVM emulated.
    uint64_t exits = 0;
    nlohmann::json by_reason = nlohmann::json::object();
    for (const auto& vcpu : vcpus_) {
        for (const auto& [name, value] : vcpu->statistics()) {
            if (name == "exits") exits += value;
            const bool reason = name.size() > 6 && name.compare(name.size() - 6, 6, "_exits") == 0;
            if (reason || name == "insn_emulation" || name == "hypercalls")
                by_reason[name] = by_reason.value(name, uint64_t{0}) + value;
        }
    }
    s["exits"] = exits;
    s["exits_by_reason"] = by_reason;
    for (const auto& transport : virtio_devices_) {
        if (const auto* net = dynamic_cast<const virtio::Net*>(&transport->device())) {
            const auto& c = net->counters();
            s["net"] = {{"rx_packets", c.rx_packets.load()},
                        {"rx_bytes", c.rx_bytes.load()},
                        {"tx_packets", c.tx_packets.load()},
                        {"tx_bytes", c.tx_bytes.load()},
                        {"dropped", c.rx_dropped.load() + c.tx_dropped.load()}};
            bool waiting = false;
            if (const auto p = net->receive_positions(waiting))
                s["net"]["rx_ring"] = {{"avail_idx", p->avail_idx},
                                       {"last_avail", p->last_avail},
                                       {"avail_event", p->avail_event},
                                       {"used_idx", p->used_idx},
                                       {"last_signalled_used", p->last_signalled_used},
                                       {"used_event", p->used_event},
                                       {"frame_waiting", waiting},
                                       {"broken", p->broken}};
        }
    }
    return s;
}

nlohmann::json Machine::handle_control(const nlohmann::json& request) {
    const std::string op = request.value("op", "");
    if (op == "pause") {
        pause_vcpus();
        return {{"ok", true}, {"state", "paused"}};
    }
    if (op == "resume") {
        resume_vcpus();
        return {{"ok", true}, {"state", "running"}};
    }
    if (op == "stats") return {{"ok", true}, {"stats", stats_json()}};
    if (op == "snapshot") {
        if (!request.contains("dir") || !request["dir"].is_string())
            return {{"ok", false}, {"error", "snapshot: \"dir\" (a string) is required"}};
        const auto took = snapshot(request["dir"].get<std::string>(), request.value("resume", true));
        return {{"ok", true}, {"dir", request["dir"]}, {"took_us", took}};
    }
    if (op == "stop") {
        finish({0, "stopped through the control socket", false});
        return {{"ok", true}, {"state", "stopped"}};
    }
    return {{"ok", false}, {"error", "unknown op '" + op + "' (pause, resume, snapshot, stats, stop)"}};
}

void Machine::vcpu_thread(Vcpu& vcpu) {
    // A restored guest is announced on its network before anyone hears it is ready (the
    // balancer connects as soon as it does), and it listened before its snapshot: its listeners
    // are ready again as soon as the vCPU enters the guest, which it does right after this.
    // Started --paused, nothing of that happens before the resume.
    park_if_paused();
    if (&vcpu == vcpus_[0].get() && !options_.restore.empty() && !stopping_) {
        announce_restored_guest();
        for (const auto& [protocol, port] : restored_listeners_) guest_ready(protocol, port);
    }
    try {
        while (!stopping_) {
            park_if_paused();
            if (stopping_) break;
            if (!vcpu.run()) continue;  // kicked: re-check stopping_
            if (!handle_exit(vcpu)) break;
        }
    } catch (const VmmError& e) {
        finish({abi::kExitVmmError, e.what(), true});
    }
}

bool Machine::handle_exit(Vcpu& vcpu) {
    kvm_run& run = vcpu.run_state();
    switch (run.exit_reason) {
        case KVM_EXIT_IO: {
            auto* data = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
            const size_t bytes = size_t{run.io.size} * run.io.count;
            bool claimed;
            if (run.io.direction == KVM_EXIT_IO_OUT)
                claimed = io_bus_.write(run.io.port, std::span<const uint8_t>(data, bytes));
            else
                claimed = io_bus_.read(run.io.port, std::span<uint8_t>(data, bytes));
            if (!claimed) ++unhandled_io_;
            return !stopping_;
        }
        case KVM_EXIT_MMIO: {
            // Unclaimed addresses read as zeros and ignore writes, as with no device there.
            const size_t len = std::min<size_t>(run.mmio.len, sizeof(run.mmio.data));
            const bool claimed = run.mmio.is_write
                                     ? mmio_bus_.write(run.mmio.phys_addr, std::span<const uint8_t>(run.mmio.data, len))
                                     : mmio_bus_.read(run.mmio.phys_addr, std::span<uint8_t>(run.mmio.data, len));
            if (!claimed) ++unhandled_io_;
            return !stopping_;
        }
        case KVM_EXIT_INTR: return true;
        case KVM_EXIT_SHUTDOWN:
            finish({abi::kExitGuestCrash, "guest triple fault (KVM_EXIT_SHUTDOWN)", true});
            return false;
        case KVM_EXIT_INTERNAL_ERROR: {
            std::string reason = "guest stopped: KVM internal error, suberror " + std::to_string(run.internal.suberror);
            if (run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION) reason += " (instruction emulation failed)";
            finish({abi::kExitGuestCrash, reason, true});
            return false;
        }
        case KVM_EXIT_FAIL_ENTRY: {
            char reason[96];
            std::snprintf(reason, sizeof(reason), "guest entry failed, hardware reason %#" PRIx64,
                          static_cast<uint64_t>(run.fail_entry.hardware_entry_failure_reason));
            finish({abi::kExitGuestCrash, reason, true});
            return false;
        }
        default:
            finish(
                {abi::kExitGuestCrash,
                 "unexpected exit " + std::to_string(run.exit_reason) + " (" + exit_reason_name(run.exit_reason) + ")",
                 true});
            return false;
    }
}

void Machine::guest_exited(int status) { finish({status, "", false}); }

void Machine::guest_panicked() { finish({abi::kExitGuestCrash, "guest kernel panic", true}); }

void Machine::guest_ready(uint32_t protocol, uint32_t port) {
    const char* name = protocol == 17 ? "udp" : "tcp";
    std::cerr << "kiln-vmm: guest ready on " + std::string(name) + "/" + std::to_string(port) + "\n";
    listeners_.emplace_back(protocol, port);
    if (control_) control_->broadcast({{"event", "ready"}, {"proto", name}, {"port", port}}, true);
}

void Machine::guest_boot_stage(abi::BootStage stage, uint64_t) { boot_stages_.emplace_back(stage, Clock::now()); }

void Machine::print_stats() const {
    const auto now = Clock::now();
    std::string text = "kiln-vmm: stats: boot " + boot_protocol_name_ + ", tsc_khz " + std::to_string(tsc_khz_);
    char timing[160];
    std::snprintf(timing, sizeof(timing), ", setup %.0f us, run %.0f us", micros(setup_done_ - started_),
                  micros(now - setup_done_));
    text += timing;
    for (const auto& [stage, at] : boot_stages_)
        text += ", stage" + std::to_string(static_cast<int>(stage)) + " +" +
                std::to_string(static_cast<long>(micros(at - setup_done_))) + "us";
    text += ", hostcalls " + std::to_string(control_port_->calls()) + ", unhandled_io " + std::to_string(unhandled_io_);
    for (const auto& transport : virtio_devices_) {
        if (const auto* net = dynamic_cast<const virtio::Net*>(&transport->device())) {
            const auto& c = net->counters();
            text += ", net rx " + std::to_string(c.rx_packets.load()) + " tx " + std::to_string(c.tx_packets.load()) +
                    " dropped " + std::to_string(c.rx_dropped.load() + c.tx_dropped.load());
        }
    }
    for (const auto& vcpu : vcpus_)
        for (const auto& [name, value] : vcpu->statistics())
            if (name == "exits" || name == "insn_emulation" || name == "io_exits" || name == "mmio_exits" ||
                name == "halt_exits" || name == "irq_exits" || name == "pf_taken" || name == "irq_injections")
                text += ", " + name + " " + std::to_string(value);
    std::cerr << text << "\n";
}

}  // namespace kiln::vmm
