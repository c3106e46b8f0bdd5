#include "devices/virtio/mmio_transport.h"

#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace kiln::vmm::virtio {

namespace abi = kiln::abi::virtio;

void Interrupt::raise(uint32_t status_bits) {
    status_.fetch_or(status_bits);
    const uint64_t one = 1;
    (void)!::write(irqfd_, &one, sizeof(one));
}

MmioTransport::MmioTransport(std::unique_ptr<Device> device, GuestMemory& memory, Vm& vm, EventLoop& loop,
                             uint64_t base, uint32_t gsi)
    : device_(std::move(device)), memory_(memory), loop_(loop), base_(base), gsi_(gsi),
      kick_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)), irq_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      interrupt_(irq_.get()), queues_(device_->queue_count()) {
    if (!kick_.valid() || !irq_.valid()) throw system_error("eventfd for a virtio device");
    // A write to QueueNotify signals the eventfd inside KVM: the vCPU never exits to kiln-vmm
    // to kick a queue.
    kvm_ioeventfd kick{};
    kick.addr = base + abi::kQueueNotify;
    kick.len = 4;
    kick.fd = kick_.get();
    if (::ioctl(vm.fd(), KVM_IOEVENTFD, &kick) != 0) throw system_error("KVM_IOEVENTFD");
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(irq_.get());
    irqfd.gsi = gsi;
    if (::ioctl(vm.fd(), KVM_IRQFD, &irqfd) != 0) throw system_error("KVM_IRQFD");
    loop.add(kick_.get(), EPOLLIN, [this](uint32_t) {
        uint64_t count;
        while (::read(kick_.get(), &count, sizeof(count)) > 0) {
        }
        device_->process_queues();
    });
}

MmioTransport::~MmioTransport() { loop_.remove(kick_.get()); }

std::string MmioTransport::cmdline_parameter() const {
    char text[64];
    std::snprintf(text, sizeof(text), "virtio_mmio.device=4K@0x%llx:%u", static_cast<unsigned long long>(base_), gsi_);
    return text;
}

Queue* MmioTransport::selected_queue() { return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr; }

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (offset >= abi::kConfig) {
        device_->read_config(offset - abi::kConfig, data);
        return;
    }
    std::fill(data.begin(), data.end(), uint8_t{0});
    if (data.size() != 4 || offset % 4 != 0) return;  // registers are 32-bit
    const uint32_t value = read_register(offset);
    std::memcpy(data.data(), &value, 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (offset >= abi::kConfig || data.size() != 4 || offset % 4 != 0) return;  // config is read-only
    uint32_t value;
    std::memcpy(&value, data.data(), 4);
    write_register(offset, value);
}

uint32_t MmioTransport::read_register(uint64_t offset) {
    const uint64_t features = device_->features() | abi::kFeatureVersion1;
    Queue* q = selected_queue();
    switch (offset) {
        case abi::kMagicValue: return abi::kMagic;
        case abi::kVersionReg: return abi::kVersion;
        case abi::kDeviceId: return device_->type();
        case abi::kVendorId: return abi::kVendor;
        case abi::kDeviceFeatures:
            return device_features_sel_ == 0   ? static_cast<uint32_t>(features)
                   : device_features_sel_ == 1 ? static_cast<uint32_t>(features >> 32)
                                               : 0;
        case abi::kQueueNumMax: return q ? Queue::kMaxSize : 0;
        case abi::kQueueReady: return q && q->ready ? 1 : 0;
        case abi::kInterruptStatus: return interrupt_.status();
        case abi::kStatus: return status_;
        case abi::kConfigGeneration: return config_generation_;
        default: return 0;
    }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
    Queue* q = selected_queue();
    // Queue registers may change only while the queue is not ready (spec 4.2.2.2).
    const bool queue_writable = q != nullptr && !q->ready;
    auto set_low = [](uint64_t& field, uint32_t v) { field = (field & ~0xffffffffull) | v; };
    auto set_high = [](uint64_t& field, uint32_t v) { field = (field & 0xffffffffull) | (uint64_t{v} << 32); };
    switch (offset) {
        case abi::kDeviceFeaturesSel: device_features_sel_ = value; break;
        case abi::kDriverFeaturesSel: driver_features_sel_ = value; break;
        case abi::kDriverFeatures:
            if (status_ & abi::kFeaturesOk) break;
            if (driver_features_sel_ == 0) set_low(driver_features_, value);
            if (driver_features_sel_ == 1) set_high(driver_features_, value);
            break;
        case abi::kQueueSel: queue_sel_ = value; break;
        case abi::kQueueNum:
            if (queue_writable) q->size = static_cast<uint16_t>(value > 0xffff ? 0 : value);
            break;
        case abi::kQueueReady:
            if (q) q->ready = value == 1;
            break;
        case abi::kQueueDescLow:
            if (queue_writable) set_low(q->desc_gpa, value);
            break;
        case abi::kQueueDescHigh:
            if (queue_writable) set_high(q->desc_gpa, value);
            break;
        case abi::kQueueDriverLow:
            if (queue_writable) set_low(q->avail_gpa, value);
            break;
        case abi::kQueueDriverHigh:
            if (queue_writable) set_high(q->avail_gpa, value);
            break;
        case abi::kQueueDeviceLow:
            if (queue_writable) set_low(q->used_gpa, value);
            break;
        case abi::kQueueDeviceHigh:
            if (queue_writable) set_high(q->used_gpa, value);
            break;
        case abi::kInterruptAck: interrupt_.acknowledge(value); break;
        case abi::kStatus: set_status(value); break;
        default: break;  // QueueNotify is handled by the ioeventfd
    }
}

void MmioTransport::set_status(uint32_t status) {
    if (status == 0) {  // reset
        device_->reset();
        for (auto& q : queues_) q.reset();
        status_ = 0;
        driver_features_ = 0;
        interrupt_.acknowledge(~0u);
        return;
    }
    if ((status & abi::kFeaturesOk) && !(status_ & abi::kFeaturesOk)) {
        const uint64_t offered = device_->features() | abi::kFeatureVersion1;
        // Only offered features may be taken, and a modern device needs VERSION_1.
        if ((driver_features_ & ~offered) || !(driver_features_ & abi::kFeatureVersion1)) status &= ~abi::kFeaturesOk;
    }
    if ((status & abi::kDriverOk) && !(status_ & abi::kDriverOk)) {
        const bool event_idx = driver_features_ & abi::kFeatureRingEventIdx;
        for (auto& q : queues_) {
            if (q.ready && !q.activate(memory_, event_idx)) {
                status_ = status | abi::kNeedsReset;
                interrupt_.raise(abi::kInterruptConfigChange);
                return;
            }
        }
        status_ = status;
        device_->activate(queues_, driver_features_, interrupt_);
        return;
    }
    status_ = status;
}

}  // namespace kiln::vmm::virtio

namespace kiln::vmm::virtio {
namespace {

struct TransportState {
    uint64_t driver_features;
    uint32_t status, device_features_sel, driver_features_sel, queue_sel, config_generation, interrupt_status;
    uint32_t queue_count, pad;
};

}  // namespace

std::vector<uint8_t> MmioTransport::save_state() {
    std::lock_guard lock(mutex_);
    TransportState t{driver_features_,
                     status_,
                     device_features_sel_,
                     driver_features_sel_,
                     queue_sel_,
                     config_generation_,
                     interrupt_.status(),
                     static_cast<uint32_t>(queues_.size()),
                     0};
    std::vector<uint8_t> out(sizeof(t) + queues_.size() * sizeof(Queue::State));
    std::memcpy(out.data(), &t, sizeof(t));
    for (size_t i = 0; i < queues_.size(); ++i) {
        const Queue::State q = queues_[i].save();
        std::memcpy(out.data() + sizeof(t) + i * sizeof(q), &q, sizeof(q));
    }
    return out;
}

void MmioTransport::restore_state(const std::vector<uint8_t>& state) {
    std::lock_guard lock(mutex_);
    TransportState t;
    if (state.size() < sizeof(t)) throw VmmError("restore: virtio transport state is truncated");
    std::memcpy(&t, state.data(), sizeof(t));
    if (t.queue_count != queues_.size() || state.size() != sizeof(t) + t.queue_count * sizeof(Queue::State))
        throw VmmError("restore: virtio transport state does not match the device");
    driver_features_ = t.driver_features;
    status_ = t.status;
    device_features_sel_ = t.device_features_sel;
    driver_features_sel_ = t.driver_features_sel;
    queue_sel_ = t.queue_sel;
    config_generation_ = t.config_generation;
    interrupt_.set_status(t.interrupt_status);
    for (size_t i = 0; i < queues_.size(); ++i) {
        Queue::State q;
        std::memcpy(&q, state.data() + sizeof(t) + i * sizeof(q), sizeof(q));
        if (!queues_[i].restore(q, memory_)) throw VmmError("restore: a virtio queue lies outside guest memory");
    }
    if ((status_ & abi::kDriverOk) && !(status_ & abi::kNeedsReset))
        device_->activate(queues_, driver_features_, interrupt_);
}

}  // namespace kiln::vmm::virtio
