// virtio-blk driver (virtio 1.2 section 5.2): each device the command line announces becomes a
// block::Device, registered in the order of the announcements, which kiln-vmm gives in the order
// of its --volume flags. Synchronous: a request (header, data, status) is added, the device
// kicked, and the caller polls the used ring until the device returns it. No other thread runs
// meanwhile (block::Device's contract: a file system operation stays atomic), so there is one
// request at a time and no lock; no interrupt either (the device's IOAPIC pin stays masked).
#include "drivers/virtio/block.h"

#include "arch/x86_64/cpu.h"
#include "console/console.h"
#include "core/errno.h"
#include "drivers/block/device.h"
#include "drivers/virtio/mmio.h"
#include "drivers/virtio/queue.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/layout.h"

namespace kiln::virtio {
namespace {

namespace abi = kiln::abi::virtio;

constexpr uint16_t kQueueSize = 64;
// Data per request: at most this many pages, so a request's descriptors (header, one per page,
// status) always fit the queue and the device's seg_max.
constexpr size_t kMaxPagesPerRequest = 32;

class VirtioBlock final : public block::Device {
  public:
    VirtioBlock(MmioDevice device, size_t index) : device_(device) {
        name_[0] = 'v';
        name_[1] = 'd';
        name_[2] = static_cast<char>('a' + index);
        name_[3] = 0;
    }

    bool start() {
        uint64_t features = 0;
        const uint64_t wanted =
            abi::kFeatureRingEventIdx | abi::kBlockFeatureFlush | abi::kBlockFeatureRo | abi::kBlockFeatureSegMax;
        if (!device_.begin(wanted, features) || !(features & abi::kFeatureRingEventIdx)) {
            device_.fail();
            return false;
        }
        flush_ = features & abi::kBlockFeatureFlush;
        read_only_ = features & abi::kBlockFeatureRo;
        sectors_ =
            uint64_t{config32(abi::kBlockConfigCapacity)} | (uint64_t{config32(abi::kBlockConfigCapacity + 4)} << 32);
        seg_max_ = (features & abi::kBlockFeatureSegMax) ? config32(abi::kBlockConfigSegMax) : 1;
        if (seg_max_ == 0) seg_max_ = 1;
        if (seg_max_ > kMaxPagesPerRequest + 1) seg_max_ = kMaxPagesPerRequest + 1;
        if (!device_.setup_queue(0, queue_, kQueueSize)) {
            device_.fail();
            return false;
        }
        device_.driver_ok();
        return true;
    }

    const char* name() const override { return name_; }
    uint64_t sector_count() const override { return sectors_; }
    bool read_only() const override { return read_only_; }

    int read(uint64_t sector, void* buffer, size_t bytes) override {
        return transfer(abi::kBlockIn, sector, static_cast<uint8_t*>(buffer), bytes);
    }

    int write(uint64_t sector, const void* buffer, size_t bytes) override {
        if (read_only_) return -EROFS;
        return transfer(abi::kBlockOut, sector, static_cast<uint8_t*>(const_cast<void*>(buffer)), bytes);
    }

    int flush() override {
        if (!flush_) return 0;  // no FLUSH: the device writes through
        return request(abi::kBlockFlush, 0, nullptr, 0);
    }

  private:
    uint32_t config32(uint32_t offset) const {
        return uint32_t{device_.config16(offset)} | (uint32_t{device_.config16(offset + 2)} << 16);
    }

    int transfer(uint32_t type, uint64_t sector, uint8_t* data, size_t bytes) {
        if (bytes % block::kSectorSize != 0) return -EINVAL;
        const uint64_t count = bytes / block::kSectorSize;
        if (sector > sectors_ || count > sectors_ - sector) return -EINVAL;
        // Pieces the device can take in one request: bounded by its seg_max, in pages.
        const size_t max_bytes = (seg_max_ - 1) * mm::kPageSize;
        while (bytes > 0) {
            size_t chunk = bytes < max_bytes ? bytes : max_bytes;
            chunk -= chunk % block::kSectorSize;
            const int error = request(type, sector, data, chunk);
            if (error != 0) return error;
            sector += chunk / block::kSectorSize;
            data += chunk;
            bytes -= chunk;
        }
        return 0;
    }

    // One request, waited for. `bytes` spans at most seg_max_ - 1 page pieces.
    int request(uint32_t type, uint64_t sector, uint8_t* data, size_t bytes) {
        header_ = {type, 0, sector};
        status_ = 0xff;
        Buffer buffers[kMaxPagesPerRequest + 3];
        size_t count = 0;
        buffers[count++] = {mm::virt_to_phys(&header_), sizeof(header_), false};
        const bool device_writes = type == abi::kBlockIn;
        size_t offset = 0;
        while (offset < bytes) {
            const uint64_t va = reinterpret_cast<uint64_t>(data + offset);
            size_t piece = mm::kPageSize - va % mm::kPageSize;
            if (piece > bytes - offset) piece = bytes - offset;
            const uint64_t phys = mm::virt_to_phys(data + offset);
            Buffer& last = buffers[count - 1];
            if (count > 1 && last.phys + last.length == phys)
                last.length += static_cast<uint32_t>(piece);  // contiguous: one descriptor
            else
                buffers[count++] = {phys, static_cast<uint32_t>(piece), device_writes};
            offset += piece;
        }
        buffers[count++] = {mm::virt_to_phys(&status_), 1, true};
        int result = -EIO;
        if (queue_.add(buffers, count, this)) {
            if (queue_.needs_kick()) device_.notify(0);
            uint32_t written;
            while (queue_.take_used(written) == nullptr) cpu::pause();
            const uint8_t status = *const_cast<volatile uint8_t*>(&status_);
            result = status == abi::kBlockStatusOk ? 0 : -EIO;
        }
        return result;
    }

    MmioDevice device_;
    Queue queue_;
    char name_[4];
    uint64_t sectors_ = 0;
    uint32_t seg_max_ = 1;
    bool read_only_ = false;
    bool flush_ = false;
    // The request's header and status: the device reads and writes them by physical address.
    abi::BlockRequestHeader header_{};
    uint8_t status_ = 0;
};

}  // namespace

size_t start_virtio_block(const Cmdline& cmdline) {
    size_t started = 0;
    for_each_device(cmdline, [&started](MmioDevice& d) {
        if (d.device_id() != abi::kBlock || started >= 26) return;
        auto* device = new VirtioBlock(d, started);
        if (!device->start()) {
            console::print("kiln: virtio-blk at irq {}: the device refused our features\n", d.irq());
            return;
        }
        block::register_device(device);
        ++started;
    });
    return started;
}

}  // namespace kiln::virtio
