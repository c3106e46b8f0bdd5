#include "devices/virtio/rng.h"

#include <sys/random.h>

namespace kiln::vmm::virtio {

void Rng::activate(std::span<Queue> queues, uint64_t, Interrupt& interrupt) {
    std::lock_guard lock(mutex_);
    queue_ = &queues[0];
    interrupt_ = &interrupt;
}

void Rng::reset() {
    std::lock_guard lock(mutex_);
    queue_ = nullptr;
    interrupt_ = nullptr;
}

void Rng::process_queues() {
    std::lock_guard lock(mutex_);
    if (queue_ == nullptr) return;
    do {
        while (auto chain = queue_->pop()) {
            uint32_t written = 0;
            for (const iovec& v : chain->writable) {
                const ssize_t n = ::getrandom(v.iov_base, v.iov_len, 0);
                if (n > 0) written += static_cast<uint32_t>(n);
            }
            queue_->push(chain->head, written);
        }
    } while (queue_->enable_notifications());
    if (queue_->needs_interrupt()) interrupt_->raise(abi::virtio::kInterruptUsedBuffer);
}

}  // namespace kiln::vmm::virtio
