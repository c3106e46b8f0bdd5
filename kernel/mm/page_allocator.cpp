#include "mm/page_allocator.h"

#include "core/panic.h"
#include "lib/string.h"
#include "mm/layout.h"
#include "platform/platform.h"

namespace kiln::mm {

namespace {
constinit PageAllocator allocator_instance;
constexpr uint64_t kLowMemoryEnd = 1 << 20;  // boot structures live below 1 MiB
}  // namespace

PageAllocator& page_allocator() { return allocator_instance; }

void PageAllocator::set_free(size_t page, bool free) {
    uint64_t mask = 1ull << (page % 64);
    if (free)
        bits_[page / 64] |= mask;
    else
        bits_[page / 64] &= ~mask;
}

void PageAllocator::mark_range(uint64_t base, uint64_t end, bool free) {
    if (end > kMaxPhys) end = kMaxPhys;
    uint64_t first = (base + 4095) / 4096;  // free only whole pages; reserve any page touched
    uint64_t last = end / 4096;
    if (!free) {
        first = base / 4096;
        last = (end + 4095) / 4096;
        if (last > kPages) last = kPages;
    }
    for (uint64_t page = first; page < last; ++page) {
        if (is_free(page) == free) continue;
        set_free(page, free);
        if (free)
            ++free_pages_;
        else
            --free_pages_;
    }
}

void PageAllocator::init(const BootInfo& info, uint64_t kernel_start, uint64_t kernel_end) {
    for (size_t i = 0; i < info.region_count; ++i) {
        const MemoryRegion& r = info.regions[i];
        if (!r.usable || r.base >= kMaxPhys) continue;
        uint64_t end = r.base + r.size;
        mark_range(r.base < kLowMemoryEnd ? kLowMemoryEnd : r.base, end, true);
        uint64_t end_word = ((end < kMaxPhys ? end : kMaxPhys) / 4096 + 63) / 64;
        if (end_word > limit_words_) limit_words_ = end_word;
    }
    mark_range(kernel_start, kernel_end, false);
    for (size_t i = 0; i < info.module_count; ++i)
        mark_range(info.modules[i].base, info.modules[i].base + info.modules[i].size, false);
    total_pages_ = free_pages_;
}

uint64_t PageAllocator::allocate(size_t count) {
    if (count == 0) return 0;
    platform::IrqGuard guard;
    size_t run = 0;
    for (size_t word = first_candidate_; word < limit_words_; ++word) {
        if (bits_[word] == 0) {
            run = 0;
            if (word == first_candidate_) ++first_candidate_;
            continue;
        }
        for (size_t bit = 0; bit < 64; ++bit) {
            size_t page = word * 64 + bit;
            if (!is_free(page)) {
                run = 0;
                continue;
            }
            if (++run == count) {
                size_t first = page + 1 - count;
                for (size_t p = first; p <= page; ++p) set_free(p, false);
                free_pages_ -= count;
                return static_cast<uint64_t>(first) * 4096;
            }
        }
    }
    return 0;
}

uint64_t PageAllocator::allocate_zeroed(size_t count) {
    const uint64_t phys = allocate(count);
    if (phys == 0) return 0;
    for (size_t page = phys / 4096; page < phys / 4096 + count; ++page) {
        const uint64_t mask = 1ull << (page % 64);
        if (dirty_[page / 64] & mask) memset(phys_to_virt(page * 4096), 0, 4096);
    }
    return phys;
}

void PageAllocator::free(uint64_t phys, size_t count) {
    platform::IrqGuard guard;
    size_t first = phys / 4096;
    for (size_t p = first; p < first + count; ++p) {
        if (p >= kPages || is_free(p)) panic("page allocator: double free of page {:#x}", p * 4096);
        set_free(p, true);
        dirty_[p / 64] |= 1ull << (p % 64);  // whoever had it may have written to it
    }
    free_pages_ += count;
    if (first / 64 < first_candidate_) first_candidate_ = first / 64;
}

}  // namespace kiln::mm
