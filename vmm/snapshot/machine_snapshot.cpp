// Machine::snapshot and Machine::restore_from: a running VM to a directory and back.
//
//   DIR/memory   guest RAM, raw and sparse: pages never touched are holes, zero pages too
//   DIR/state    everything else (snapshot/state_file.h)
//   DIR/initrd   the initrd the guest's root file system points into, if it had one
//
// Both files are written under temporary names and renamed once complete, so a snapshot that
// exists is whole. Restore maps `memory` MAP_PRIVATE: pages load on first touch, and every VM
// restored from the same snapshot shares the clean ones through the page cache.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "boot/layout.h"
#include "devices/virtio/block.h"
#include "devices/virtio/net.h"
#include "machine.h"
#include "snapshot/snapshot_files.h"
#include "snapshot/state_file.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

using namespace snapshot;

constexpr size_t kMaxVirtio = 8;  // the record's; Tag::kVirtioTypes holds them all

// A volume's device state (Tag::kDevice at its transport's index): the file given again at a
// restore must be the same size and as writable as the guest knows it.
struct BlockRecord {
    uint64_t sectors;
    uint32_t read_only;
    uint32_t pad;
};

struct MachineRecord {
    uint64_t memory_bytes;
    uint64_t tsc_khz;
    uint64_t realtime_ns;  // the host's wall clock when the snapshot was taken
    uint64_t initrd_size;  // 0: no initrd
    uint32_t vcpu_count;
    uint32_t virtio_count;
    uint32_t virtio_types[kMaxVirtio];
    uint8_t macs[kMaxVirtio][6];
    uint32_t initrd_mapped;
    // The first network's guest address (kiln.ip), network byte order, 0 if none: announced on
    // restore. This was padding, always written as zero, so an older snapshot reads as "none".
    uint32_t guest_ipv4;
};

}  // namespace

uint64_t Machine::snapshot(const std::string& dir, bool resume) {
    const auto started = std::chrono::steady_clock::now();
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) throw VmmError("snapshot: cannot create " + dir + ": " + error.message());
    const bool was_running = !pause_requested_;
    pause_vcpus();
    try {
        Writer w;
        MachineRecord record{};
        record.memory_bytes = memory_->size();
        record.tsc_khz = tsc_khz_;
        record.realtime_ns = realtime_ns();
        record.initrd_size = initrd_file_.bytes().size();
        record.initrd_mapped = initrd_mapped_;
        record.guest_ipv4 = guest_ipv4_;
        record.vcpu_count = static_cast<uint32_t>(vcpus_.size());
        record.virtio_count = static_cast<uint32_t>(virtio_devices_.size());
        std::vector<uint32_t> types;
        for (size_t i = 0; i < virtio_devices_.size(); ++i) {
            types.push_back(virtio_devices_[i]->device().type());
            if (i < kMaxVirtio) record.virtio_types[i] = types.back();
            if (const auto* net = dynamic_cast<const virtio::Net*>(&virtio_devices_[i]->device());
                net != nullptr && i < kMaxVirtio)
                std::memcpy(record.macs[i], net->mac().data(), 6);
            if (const auto* block = dynamic_cast<const virtio::Block*>(&virtio_devices_[i]->device()))
                w.add_object(Tag::kDevice, static_cast<uint32_t>(i),
                             BlockRecord{block->sector_count(), block->read_only(), 0});
        }
        w.add_object(Tag::kMachine, 0, record);
        w.add(Tag::kVirtioTypes, 0, types.data(), types.size() * sizeof(uint32_t));
        const kvm_cpuid2* table = cpuid_.table();
        w.add(Tag::kCpuid, 0, table, 8 + table->nent * sizeof(kvm_cpuid_entry2));
        for (size_t i = 0; i < vcpus_.size(); ++i) {
            const auto state = vcpus_[i]->save_state(*kvm_);
            w.add(Tag::kVcpu, static_cast<uint32_t>(i), state.data(), state.size());
        }
        for (uint32_t chip = 0; chip < 3; ++chip) {  // PIC master, PIC slave, I/O APIC
            kvm_irqchip c{};
            c.chip_id = chip;
            if (::ioctl(vm_->fd(), KVM_GET_IRQCHIP, &c) != 0) throw system_error("snapshot: KVM_GET_IRQCHIP");
            w.add_object(Tag::kIrqchip, chip, c);
        }
        kvm_clock_data clock{};
        if (::ioctl(vm_->fd(), KVM_GET_CLOCK, &clock) != 0) throw system_error("snapshot: KVM_GET_CLOCK");
        w.add_object(Tag::kClock, 0, clock);
        w.add_object(Tag::kSerial, 0, serial_.save());
        for (size_t i = 0; i < virtio_devices_.size(); ++i) {
            const auto state = virtio_devices_[i]->save_state();
            w.add(Tag::kVirtio, static_cast<uint32_t>(i), state.data(), state.size());
        }
        add_listeners(w, listeners_);

        // Written whole under temporary names, then renamed: a snapshot that exists is complete.
        write_memory(*memory_, dir + "/memory.tmp");
        write_file(dir + "/state.tmp", w.finish());
        if (!initrd_file_.bytes().empty()) keep_initrd(options_.initrd, dir);
        std::filesystem::rename(dir + "/memory.tmp", dir + "/memory");
        std::filesystem::rename(dir + "/state.tmp", dir + "/state");
    } catch (...) {
        if (was_running && resume) resume_vcpus();
        throw;
    }
    if (was_running && resume) resume_vcpus();
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
}

void Machine::restore_from(const std::string& dir) {
    const Reader state(read_file(dir + "/state"), dir + "/state");
    if (!state.has(Tag::kMachine) && state.has(Tag::kProcMachine))
        state.fail("was taken by kiln-proc (a process, not a VM); restore it with kiln-proc");
    const auto record = state.get_object<MachineRecord>(Tag::kMachine);
    if (record.vcpu_count != 1) state.fail("has " + std::to_string(record.vcpu_count) + " vCPUs; one is supported");
    if (record.virtio_count > (state.has(Tag::kVirtioTypes) ? 32 : kMaxVirtio)) state.fail("has too many devices");
    if (record.memory_bytes == 0 || record.memory_bytes > layout::kMaxMemory || record.memory_bytes % 4096)
        state.fail("has a bad memory size");
    boot_protocol_name_ = "restore";
    options_.memory_bytes = record.memory_bytes;
    guest_ipv4_ = record.guest_ipv4;
    if (record.initrd_size != 0) {
        options_.initrd = dir + "/initrd";
        initrd_file_ = MappedFile(options_.initrd, "snapshot initrd");
        if (initrd_file_.bytes().size() != record.initrd_size) state.fail("its initrd changed size");
        if (!record.initrd_mapped) state.fail("was taken with a copied initrd; only mapped ones restore");
    }

    // The order of a boot, minus the kernel: memory before the irqchip, never a PIT.
    kvm_ = std::make_unique<Kvm>();
    vm_ = std::make_unique<Vm>(*kvm_);
    memory_ = std::make_unique<GuestMemory>(dir + "/memory", record.memory_bytes);
    vm_->register_memory(*memory_);
    if (record.initrd_size != 0) {
        if (!vm_->map_readonly(layout::kInitrdMapped, initrd_file_.bytes().data(), initrd_file_.bytes().size()))
            throw VmmError("restore: KVM cannot map the initrd read-only");
        initrd_mapped_ = true;
    }
    vm_->create_irqchip();

    const auto& cpuid_bytes = state.get(Tag::kCpuid);
    uint32_t entries = 0;
    if (cpuid_bytes.size() >= 8) std::memcpy(&entries, cpuid_bytes.data(), 4);
    if (cpuid_bytes.size() != 8 + entries * sizeof(kvm_cpuid_entry2) || entries > 4096) state.fail("bad CPUID table");
    cpuid_.storage = std::make_unique<uint8_t[]>(cpuid_bytes.size());
    std::memcpy(cpuid_.storage.get(), cpuid_bytes.data(), cpuid_bytes.size());
    vcpus_.push_back(std::make_unique<Vcpu>(*vm_, 0));
    for (auto& vcpu : vcpus_) vcpu->set_cpuid(cpuid_);
    // The guest measured its TSC's rate at boot and keeps time by it: it must tick as fast here.
    tsc_khz_ = vcpus_[0]->tsc_khz();
    if (record.tsc_khz != 0 && tsc_khz_ != record.tsc_khz) {
        if (!vcpus_[0]->set_tsc_khz(record.tsc_khz))
            state.fail("was taken where the TSC ran at " + std::to_string(record.tsc_khz) + " kHz; here it runs at " +
                       std::to_string(tsc_khz_) + " kHz and KVM cannot scale it");
        tsc_khz_ = record.tsc_khz;
    }

    // Devices in the snapshot's order, at the same addresses; networks on the taps given now,
    // with the MACs the guest knows.
    std::vector<uint32_t> types(record.virtio_count);
    if (state.has(Tag::kVirtioTypes)) {
        const auto& bytes = state.get(Tag::kVirtioTypes);
        if (bytes.size() != types.size() * sizeof(uint32_t)) state.fail("has a bad device list");
        std::memcpy(types.data(), bytes.data(), bytes.size());
    } else {
        std::copy(record.virtio_types, record.virtio_types + record.virtio_count, types.begin());
    }
    std::vector<NetOptions> nets = options_.nets;
    size_t net_index = 0;
    for (uint32_t i = 0; i < record.virtio_count; ++i) {
        if (types[i] != abi::virtio::kNet) continue;
        if (net_index < nets.size() && i < kMaxVirtio) std::memcpy(nets[net_index].mac.data(), record.macs[i], 6);
        ++net_index;
    }
    add_virtio_devices(types, nets, options_.volumes);
    for (uint32_t i = 0; i < record.virtio_count; ++i) {
        const auto* block = dynamic_cast<const virtio::Block*>(&virtio_devices_[i]->device());
        if (block == nullptr) continue;
        const auto saved = state.get_object<BlockRecord>(Tag::kDevice, i);
        if (saved.sectors != block->sector_count() || (saved.read_only != 0) != block->read_only())
            state.fail("has a volume of " + std::to_string(saved.sectors) + " sectors" +
                       (saved.read_only ? ", read-only" : "") + " where --volume gives one of " +
                       std::to_string(block->sector_count()) + (block->read_only() ? ", read-only" : ""));
    }

    for (uint32_t chip = 0; chip < 3; ++chip) {
        auto c = state.get_object<kvm_irqchip>(Tag::kIrqchip, chip);
        if (::ioctl(vm_->fd(), KVM_SET_IRQCHIP, &c) != 0) throw system_error("restore: KVM_SET_IRQCHIP");
    }
    auto clock = state.get_object<kvm_clock_data>(Tag::kClock);
    clock.flags = 0;
    if (::ioctl(vm_->fd(), KVM_SET_CLOCK, &clock) != 0) throw system_error("restore: KVM_SET_CLOCK");

    // The guest's clock moves on by the time the snapshot spent on disk: its timers that fell
    // due meanwhile fire at once, as after a suspend.
    const uint64_t now = realtime_ns();
    const uint64_t away_ns = now > record.realtime_ns ? now - record.realtime_ns : 0;
    // Seconds and the remainder apart, so that the product fits in 64 bits for any realistic gap.
    const uint64_t tsc_advance =
        away_ns / 1000000000 * record.tsc_khz * 1000 + away_ns % 1000000000 * record.tsc_khz / 1000000;
    vcpus_[0]->restore_state(state.get(Tag::kVcpu, 0), tsc_advance);
    serial_.restore(state.get_object<Serial::State>(Tag::kSerial));
    for (uint32_t i = 0; i < record.virtio_count; ++i) virtio_devices_[i]->restore_state(state.get(Tag::kVirtio, i));

    restored_listeners_ = read_listeners(state);
}

}  // namespace kiln::vmm

namespace kiln::vmm {

void Machine::announce_restored_guest() {
    if (guest_ipv4_ == 0) return;
    for (const auto& transport : virtio_devices_) {
        if (auto* net = dynamic_cast<virtio::Net*>(&transport->device())) {
            net->announce(guest_ipv4_);
            return;  // kiln.ip is the first network's address
        }
    }
}

}  // namespace kiln::vmm
