// virtio-rng: entropy for the guest from the host's getrandom(2).
#pragma once

#include <mutex>

#include "devices/virtio/device.h"

namespace kiln::vmm::virtio {

class Rng final : public Device {
  public:
    uint32_t type() const override { return abi::virtio::kRng; }
    uint64_t features() const override { return abi::virtio::kFeatureRingEventIdx; }
    size_t queue_count() const override { return 1; }
    void read_config(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0); }
    void activate(std::span<Queue> queues, uint64_t driver_features, Interrupt& interrupt) override;
    void reset() override;
    void process_queues() override;

  private:
    std::mutex mutex_;
    Queue* queue_ = nullptr;
    Interrupt* interrupt_ = nullptr;
};

}  // namespace kiln::vmm::virtio
