#include "drivers/virtio/queue.h"

#include "lib/string.h"
#include "lib/utility.h"
#include "mm/heap.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"

namespace kiln::virtio {

namespace abi = kiln::abi::virtio;

namespace {

inline void barrier() { asm volatile("mfence" ::: "memory"); }

uint16_t used_idx(volatile uint8_t* used) { return *reinterpret_cast<volatile uint16_t*>(used + 2); }

}  // namespace

bool Queue::init(uint16_t size) {
    size_ = size;
    // One allocation for the three areas: descriptors, then the available ring, then the used
    // ring on its own page boundary.
    const size_t desc_bytes = size_t{size} * sizeof(abi::Descriptor);
    const size_t avail_bytes = abi::avail_size(size);
    const size_t first = align_up(desc_bytes + avail_bytes, mm::kPageSize);
    const size_t total = first + align_up(abi::used_size(size), mm::kPageSize);
    const uint64_t phys = mm::page_allocator().allocate(total / mm::kPageSize);
    if (phys == 0) return false;
    auto* base = static_cast<uint8_t*>(mm::phys_to_virt(phys));
    memset(base, 0, total);
    desc_ = reinterpret_cast<abi::Descriptor*>(base);
    avail_ = reinterpret_cast<volatile uint16_t*>(base + desc_bytes);
    used_ = base + first;
    tokens_ = static_cast<void**>(heap::allocate(sizeof(void*) * size));
    if (tokens_ == nullptr) return false;
    for (uint16_t i = 0; i < size; ++i) {
        desc_[i].next = static_cast<uint16_t>(i + 1);
        tokens_[i] = nullptr;
    }
    free_head_ = 0;
    free_count_ = size;
    return true;
}

uint64_t Queue::desc_phys() const { return mm::virt_to_phys(desc_); }
uint64_t Queue::avail_phys() const { return mm::virt_to_phys(const_cast<uint16_t*>(avail_)); }
uint64_t Queue::used_phys() const { return mm::virt_to_phys(const_cast<uint8_t*>(used_)); }

bool Queue::add(const Buffer* buffers, size_t count, void* token) {
    if (count == 0 || count > free_count_) return false;
    const uint16_t head = free_head_;
    uint16_t index = head;
    for (size_t i = 0; i < count; ++i) {
        abi::Descriptor& d = desc_[index];
        d.addr = buffers[i].phys;
        d.len = buffers[i].length;
        d.flags = static_cast<uint16_t>((buffers[i].device_writes ? abi::kDescWrite : 0) |
                                        (i + 1 < count ? abi::kDescNext : 0));
        if (i + 1 < count) index = d.next;
    }
    free_head_ = desc_[index].next;
    free_count_ = static_cast<uint16_t>(free_count_ - count);
    tokens_[head] = token;
    avail_[2 + avail_idx_ % size_] = head;
    barrier();  // the ring entry before the index
    ++avail_idx_;
    avail_[1] = avail_idx_;
    return true;
}

bool Queue::needs_kick() {
    barrier();
    const uint16_t old = kicked_idx_;
    kicked_idx_ = avail_idx_;
    if (old == avail_idx_) return false;
    const uint16_t avail_event = *reinterpret_cast<volatile uint16_t*>(used_ + 4 + 8 * size_);
    return abi::need_event(avail_event, avail_idx_, old);
}

void* Queue::take_used(uint32_t& written) {
    if (last_used_ == used_idx(used_)) return nullptr;
    barrier();  // the entry after the index
    const uint8_t* entry = const_cast<const uint8_t*>(used_) + 4 + 8 * (last_used_ % size_);
    uint32_t id, len;
    memcpy(&id, entry, 4);
    memcpy(&len, entry + 4, 4);
    ++last_used_;
    if (id >= size_) return nullptr;  // a broken device: ignore the entry
    void* token = tokens_[id];
    tokens_[id] = nullptr;
    // Return the chain's descriptors to the free list.
    uint16_t index = static_cast<uint16_t>(id);
    uint16_t count = 1;
    while (desc_[index].flags & abi::kDescNext) {
        index = desc_[index].next;
        ++count;
    }
    desc_[index].next = free_head_;
    free_head_ = static_cast<uint16_t>(id);
    free_count_ = static_cast<uint16_t>(free_count_ + count);
    written = len;
    return token;
}

bool Queue::arm_interrupt() {
    // used_event: interrupt me once the device has used past what I have seen.
    avail_[2 + size_] = last_used_;
    barrier();
    return last_used_ != used_idx(used_);
}

void Queue::disarm_interrupt() {
    // With event index, an old used_event already stops interrupts; nothing to do.
}

}  // namespace kiln::virtio
