// The physical page allocator: a bitmap over the direct-mapped range (0..4 GiB), one bit per 4 KiB
// page, set when the page is free. The bitmap lives in .bss, which the loader hands over zeroed
// ("all used"), so only the part covering real RAM is ever touched: shadow paging on PVM makes every
// first touch of a page cost a host fault.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "boot/boot_info.h"

namespace kiln::mm {

class PageAllocator {
  public:
    // Frees every usable page of `info` that is not the kernel image, a boot module or below 1 MiB.
    void init(const BootInfo& info, uint64_t kernel_start, uint64_t kernel_end);

    // `count` physically contiguous pages; 0 if none. Pages come back with whatever they held.
    uint64_t allocate(size_t count = 1);
    // `count` contiguous pages of zeros. Pages never handed out before are still as the loader
    // left them, zero, and are not written again: on PVM and on proc each first touch costs a
    // host fault.
    uint64_t allocate_zeroed(size_t count = 1);
    void free(uint64_t phys, size_t count = 1);

    size_t free_pages() const { return free_pages_; }
    size_t total_pages() const { return total_pages_; }

  private:
    static constexpr uint64_t kMaxPhys = 4ull << 30;
    static constexpr size_t kPages = kMaxPhys / 4096;
    static constexpr size_t kWords = kPages / 64;

    bool is_free(size_t page) const { return (bits_[page / 64] >> (page % 64)) & 1; }
    void set_free(size_t page, bool free);
    void mark_range(uint64_t base, uint64_t end, bool free);

    uint64_t bits_[kWords] = {};
    uint64_t dirty_[kWords] = {};  // set once a page has been handed out
    size_t first_candidate_ = 0;   // no free page below this word
    size_t limit_words_ = 0;       // words that cover RAM
    size_t free_pages_ = 0;
    size_t total_pages_ = 0;
};

PageAllocator& page_allocator();

}  // namespace kiln::mm
