// One microVM: guest memory, vCPUs, devices, and the loop that runs them until the guest exits.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "boot/boot_protocol.h"
#include "boot/elf_image.h"
#include "control/control_socket.h"
#include "devices/console_output.h"
#include "devices/control_port.h"
#include "devices/io_bus.h"
#include "devices/mmio_bus.h"
#include "devices/serial.h"
#include "devices/virtio/mmio_transport.h"
#include "event_loop.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"
#include "kvm/vcpu.h"
#include "kvm/vm.h"
#include "options.h"
#include "util/mapped_file.h"

namespace kiln::vmm {

class Machine final : private ControlPortListener {
  public:
    // Checks the images and sets up the whole VM; throws VmmError on any problem.
    explicit Machine(const Options& options);
    ~Machine() override;

    // Runs until the guest exits, crashes or the watchdog fires. Returns kiln-vmm's exit status.
    int run();

  private:
    struct Outcome {
        int status;
        std::string reason;  // empty for a normal guest exit
        bool dump_registers;
    };

    void vcpu_thread(Vcpu& vcpu);
    // Handles one exit; returns false when the vCPU must stop.
    bool handle_exit(Vcpu& vcpu);
    void finish(Outcome outcome);
    void kick_vcpus();
    void print_stats() const;
    nlohmann::json handle_control(const nlohmann::json& request);
    nlohmann::json stats_json() const;
    // Holds every vCPU outside KVM_RUN (pause) or lets them go (resume). Any thread but a vCPU's.
    void pause_vcpus();
    void resume_vcpus();
    void park_if_paused();
    void boot();
    // Snapshot and restore (machine_snapshot.cpp). snapshot() pauses the vCPUs, writes `dir`, and
    // resumes them if `resume`; returns the microseconds it took.
    uint64_t snapshot(const std::string& dir, bool resume);
    void restore_from(const std::string& dir);
    // A gratuitous ARP for the guest's address on its first network (virtio::Net::announce).
    void announce_restored_guest();
    // Creates the virtio devices (types as in abi/kiln/virtio.h, networks and volumes each in
    // their flags' order); returns their kernel command-line parameters.
    std::vector<std::string> add_virtio_devices(const std::vector<uint32_t>& types, const std::vector<NetOptions>& nets,
                                                const std::vector<VolumeOptions>& volumes);

    // ControlPortListener
    void guest_exited(int status) override;
    void guest_panicked() override;
    void guest_ready(uint32_t protocol, uint32_t port) override;
    void guest_boot_stage(abi::BootStage stage, uint64_t guest_tsc) override;

    Options options_;
    std::chrono::steady_clock::time_point started_;
    MappedFile kernel_file_;
    MappedFile initrd_file_;
    std::optional<ElfImage> kernel_;

    std::unique_ptr<Kvm> kvm_;
    std::unique_ptr<Vm> vm_;
    std::unique_ptr<GuestMemory> memory_;
    std::vector<std::unique_ptr<Vcpu>> vcpus_;
    std::string boot_protocol_name_;
    uint64_t tsc_khz_ = 0;

    ConsoleOutput console_;
    Serial serial_{console_};
    std::unique_ptr<ControlPort> control_port_;
    IoBus io_bus_;
    MmioBus mmio_bus_;
    EventLoop event_loop_;
    std::vector<std::unique_ptr<virtio::MmioTransport>> virtio_devices_;

    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::condition_variable finished_cv_;
    std::optional<Outcome> outcome_;
    std::atomic<bool> stopping_{false};
    std::chrono::steady_clock::time_point setup_done_;
    std::vector<std::pair<abi::BootStage, std::chrono::steady_clock::time_point>> boot_stages_;
    uint64_t unhandled_io_ = 0;
    std::unique_ptr<ControlSocket> control_;
    std::mutex pause_mutex_;
    std::condition_variable pause_cv_;
    bool pause_requested_ = false;
    size_t vcpus_parked_ = 0;
    std::vector<std::pair<uint32_t, uint32_t>> listeners_;  // ready events seen: (protocol, port)
    std::vector<std::pair<uint32_t, uint32_t>> restored_listeners_;
    Kvm::CpuidTable cpuid_;
    bool initrd_mapped_ = false;
    uint32_t guest_ipv4_ = 0;  // kiln.ip of the first network, network byte order; 0: none
};

}  // namespace kiln::vmm
