#include "mm/heap.h"

#include "core/panic.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"
#include "platform/platform.h"

namespace kiln::heap {
namespace {

constexpr size_t kHeaderSize = 16;
constexpr size_t kClassCount = 8;  // 16, 32, ..., 2048 bytes including the header
constexpr size_t kSmallestClass = 16;
constexpr uint32_t kMagicSmall = 0x6b696c6e;  // "kiln"
constexpr uint32_t kMagicLarge = 0x4b494c4e;
constexpr uint32_t kMagicFree = 0xdeadf4ee;

struct Header {
    uint32_t magic;
    uint32_t size_class;  // small: class index; large: page count
    uint64_t reserved;
};
static_assert(sizeof(Header) == kHeaderSize);

struct FreeBlock {
    Header header;
    FreeBlock* next;
};

constinit FreeBlock* free_lists[kClassCount] = {};
constinit Stats counters = {};

size_t class_size(size_t index) { return kSmallestClass << index; }

size_t class_for(size_t total) {
    size_t index = 0;
    while (class_size(index) < total) ++index;
    return index;
}

bool refill(size_t index) {
    uint64_t phys = mm::page_allocator().allocate(1);
    if (phys == 0) return false;
    auto* page = static_cast<char*>(mm::phys_to_virt(phys));
    const size_t size = class_size(index);
    for (size_t offset = 0; offset + size <= mm::kPageSize; offset += size) {
        auto* block = reinterpret_cast<FreeBlock*>(page + offset);
        block->header = {kMagicFree, static_cast<uint32_t>(index), 0};
        block->next = free_lists[index];
        free_lists[index] = block;
    }
    return true;
}

}  // namespace

void* allocate(size_t size) {
    if (size > (1ull << 40)) return nullptr;
    const size_t total = size + kHeaderSize;
    platform::IrqGuard guard;
    if (total <= class_size(kClassCount - 1)) {
        const size_t index = class_for(total);
        if (free_lists[index] == nullptr && !refill(index)) return nullptr;
        FreeBlock* block = free_lists[index];
        free_lists[index] = block->next;
        block->header = {kMagicSmall, static_cast<uint32_t>(index), 0};
        ++counters.small_blocks_in_use;
        return reinterpret_cast<char*>(block) + kHeaderSize;
    }
    const size_t pages = (total + mm::kPageSize - 1) / mm::kPageSize;
    uint64_t phys = mm::page_allocator().allocate(pages);
    if (phys == 0) return nullptr;
    auto* header = static_cast<Header*>(mm::phys_to_virt(phys));
    *header = {kMagicLarge, static_cast<uint32_t>(pages), 0};
    counters.large_pages_in_use += pages;
    return reinterpret_cast<char*>(header) + kHeaderSize;
}

void free(void* p) {
    if (p == nullptr) return;
    auto* header = reinterpret_cast<Header*>(static_cast<char*>(p) - kHeaderSize);
    platform::IrqGuard guard;
    if (header->magic == kMagicSmall && header->size_class < kClassCount) {
        auto* block = reinterpret_cast<FreeBlock*>(header);
        const size_t index = header->size_class;
        block->header.magic = kMagicFree;
        block->next = free_lists[index];
        free_lists[index] = block;
        --counters.small_blocks_in_use;
        return;
    }
    if (header->magic == kMagicLarge) {
        const size_t pages = header->size_class;
        header->magic = kMagicFree;
        counters.large_pages_in_use -= pages;
        mm::page_allocator().free(mm::virt_to_phys(header), pages);
        return;
    }
    panic("heap: free of {} which is not an allocated block (magic {:#x})", p, header->magic);
}

Stats stats() { return counters; }

}  // namespace kiln::heap
