// virtio-blk (virtio 1.2 section 5.2): a volume, a host file, as the guest's block device. One
// request queue; requests are served synchronously on the event loop's thread with pread and
// pwrite on the file (T_IN, T_OUT), fdatasync (T_FLUSH), and the serial "kiln-volN" (T_GET_ID).
//
// Every chain is checked before a byte moves: a 16-byte readable header, a writable status byte
// at the end, data in whole sectors inside the volume and inside guest memory (the queue checks
// that), no write to a read-only volume. A bad request fails with IOERR (UNSUPP for an unknown
// type); a chain too malformed to carry a status is returned with nothing written.
#pragma once

#include <mutex>
#include <span>
#include <string>

#include "devices/virtio/device.h"
#include "util/volume_file.h"

namespace kiln::vmm::virtio {

class Block final : public Device {
  public:
    // `index`: the volume's place among the --volume flags (its serial is "kiln-vol<index>").
    Block(VolumeFile file, uint32_t index);

    // Data descriptors per request offered to the driver (VIRTIO_BLK_F_SEG_MAX).
    static constexpr uint32_t kSegMax = Queue::kMaxSize - 2;

    uint32_t type() const override { return abi::virtio::kBlock; }
    uint64_t features() const override;
    size_t queue_count() const override { return 1; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void activate(std::span<Queue> queues, uint64_t driver_features, Interrupt& interrupt) override;
    void reset() override;
    void process_queues() override;

    uint64_t sector_count() const { return sectors_; }
    bool read_only() const { return file_.read_only; }

    // One request: returns the bytes written into the chain's writable part (status included).
    // Public for the fuzz target, which feeds chains without a transport.
    uint32_t serve(const Chain& chain);

  private:
    uint8_t execute(const Chain& chain, uint32_t& data_written);

    VolumeFile file_;
    uint64_t sectors_;
    std::string serial_;
    std::mutex mutex_;
    Queue* queue_ = nullptr;
    Interrupt* interrupt_ = nullptr;
};

}  // namespace kiln::vmm::virtio
