#include "devices/virtio/queue.h"

#include <atomic>
#include <cstring>

namespace kiln::vmm::virtio {

namespace abi = kiln::abi::virtio;

size_t Chain::readable_bytes() const {
    size_t n = 0;
    for (const auto& v : readable) n += v.iov_len;
    return n;
}

size_t Chain::writable_bytes() const {
    size_t n = 0;
    for (const auto& v : writable) n += v.iov_len;
    return n;
}

bool Queue::activate(const GuestMemory& memory, bool event_idx) {
    if (size == 0 || size > kMaxSize || (size & (size - 1)) != 0) return false;
    if (desc_gpa % 16 || avail_gpa % 2 || used_gpa % 4) return false;  // spec 2.7 alignment
    if (!memory.contains(desc_gpa, uint64_t{size} * sizeof(abi::Descriptor)) ||
        !memory.contains(avail_gpa, abi::avail_size(size)) || !memory.contains(used_gpa, abi::used_size(size)))
        return false;
    memory_ = &memory;
    event_idx_ = event_idx;
    broken_ = false;
    last_avail_ = used_idx_ = last_signalled_used_ = 0;
    return true;
}

void Queue::reset() {
    memory_ = nullptr;
    ready = false;
    size = kMaxSize;
    desc_gpa = avail_gpa = used_gpa = 0;
    broken_ = false;
}

uint16_t Queue::read_u16(uint64_t gpa) const {
    uint16_t v;
    std::memcpy(&v, memory_->span(gpa, 2).data(), 2);
    return v;
}

void Queue::write_u16(uint64_t gpa, uint16_t value) { std::memcpy(memory_->span(gpa, 2).data(), &value, 2); }

bool Queue::fail() {
    broken_ = true;
    return false;
}

std::optional<Chain> Queue::pop() {
    if (!active() || broken_) return std::nullopt;
    const uint16_t avail_idx = read_u16(avail_idx_gpa());
    if (avail_idx == last_avail_) return std::nullopt;
    if (static_cast<uint16_t>(avail_idx - last_avail_) > size) {  // the driver ran ahead of the ring
        fail();
        return std::nullopt;
    }
    // Read the ring entry only after seeing the index (the driver wrote them in that order).
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint16_t head = read_u16(avail_gpa + 4 + 2ull * (last_avail_ % size));
    ++last_avail_;
    if (head >= size) {
        fail();
        return std::nullopt;
    }
    Chain chain{head, {}, {}};
    uint16_t index = head;
    bool seen_writable = false;
    for (uint16_t count = 0;; ++count) {
        if (count >= size) {  // a loop
            fail();
            return std::nullopt;
        }
        abi::Descriptor d;
        std::memcpy(&d, memory_->span(desc_gpa + uint64_t{index} * sizeof(d), sizeof(d)).data(), sizeof(d));
        if (d.flags & abi::kDescIndirect) {  // not offered, so not allowed
            fail();
            return std::nullopt;
        }
        auto bytes = memory_->span(d.addr, d.len);
        if (bytes.empty() && d.len != 0) {
            fail();
            return std::nullopt;
        }
        const bool writable = d.flags & abi::kDescWrite;
        if (!writable && seen_writable) {  // readable after writable: forbidden by the spec
            fail();
            return std::nullopt;
        }
        seen_writable = seen_writable || writable;
        // An empty buffer carries nothing, and its address may lie anywhere (a null iov_base for
        // the device's memcpy): it is left out of the chain.
        if (d.len != 0) (writable ? chain.writable : chain.readable).push_back(iovec{bytes.data(), bytes.size()});
        if (!(d.flags & abi::kDescNext)) break;
        if (d.next >= size) {
            fail();
            return std::nullopt;
        }
        index = d.next;
    }
    return chain;
}

void Queue::push(uint16_t head, uint32_t written) {
    if (!active()) return;
    const abi::UsedElement e{head, written};
    std::memcpy(memory_->span(used_gpa + 4 + 8ull * (used_idx_ % size), 8).data(), &e, 8);
    ++used_idx_;
    // The element before the index: the driver reads them in the other order.
    std::atomic_thread_fence(std::memory_order_release);
    write_u16(used_gpa + 2, used_idx_);
}

bool Queue::needs_interrupt() {
    if (!active()) return false;
    std::atomic_thread_fence(std::memory_order_seq_cst);
    const uint16_t old = last_signalled_used_;
    last_signalled_used_ = used_idx_;
    if (old == used_idx_) return false;
    if (event_idx_) return abi::need_event(read_u16(used_event_gpa()), used_idx_, old);
    return !(read_u16(avail_gpa) & abi::kAvailNoInterrupt);
}

std::optional<Queue::Positions> Queue::positions() const {
    if (!active()) return std::nullopt;
    return Positions{
        read_u16(avail_idx_gpa()),  last_avail_, read_u16(avail_event_gpa()), used_idx_, last_signalled_used_,
        read_u16(used_event_gpa()), broken_};
}

bool Queue::enable_notifications() {
    if (!active() || broken_) return false;  // a broken queue never asks for more work
    if (event_idx_) {
        write_u16(avail_event_gpa(), last_avail_);  // avail_event
    } else {
        write_u16(used_gpa, 0);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return read_u16(avail_idx_gpa()) != last_avail_;
}

}  // namespace kiln::vmm::virtio

namespace kiln::vmm::virtio {

Queue::State Queue::save() const {
    State s{};
    s.desc_gpa = desc_gpa;
    s.avail_gpa = avail_gpa;
    s.used_gpa = used_gpa;
    s.size = size;
    s.last_avail = last_avail_;
    s.used_idx = used_idx_;
    s.last_signalled_used = last_signalled_used_;
    s.ready = ready;
    s.active = active();
    s.event_idx = event_idx_;
    s.broken = broken_;
    return s;
}

bool Queue::restore(const State& s, const GuestMemory& memory) {
    reset();
    size = s.size;
    desc_gpa = s.desc_gpa;
    avail_gpa = s.avail_gpa;
    used_gpa = s.used_gpa;
    ready = s.ready != 0;
    if (!s.active) return true;
    if (!activate(memory, s.event_idx != 0)) return false;
    last_avail_ = s.last_avail;
    used_idx_ = s.used_idx;
    last_signalled_used_ = s.last_signalled_used;
    broken_ = s.broken != 0;
    return true;
}

}  // namespace kiln::vmm::virtio
