#include "fs/ext4/block_cache.h"

#include "core/errno.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace kiln::fs::ext4 {

BlockCache::BlockCache(block::Device& device, uint32_t block_size) : device_(device), block_size_(block_size) {}

BlockCache::~BlockCache() {
    for (Buffer*& head : buckets_) {
        while (head) {
            Buffer* next = head->next;
            destroy(head);
            head = next;
        }
    }
}

void BlockCache::destroy(Buffer* b) {
    heap::free(b->data);
    delete b;
}

Buffer* BlockCache::find(uint64_t block) {
    for (Buffer* b = buckets_[block % kBuckets]; b; b = b->next)
        if (b->block == block) return b;
    return nullptr;
}

Buffer* BlockCache::insert(uint64_t block) {
    auto* b = new Buffer;
    if (!b) return nullptr;
    b->data = static_cast<uint8_t*>(heap::allocate(block_size_));
    if (!b->data) {
        delete b;
        return nullptr;
    }
    b->block = block;
    b->next = buckets_[block % kBuckets];
    buckets_[block % kBuckets] = b;
    ++count_;
    return b;
}

Buffer* BlockCache::get(uint64_t block) {
    if (Buffer* b = find(block)) return b;
    Buffer* b = insert(block);
    if (!b) return nullptr;
    if (read_blocks(block, b->data, 1) != 0) {
        forget(block);
        return nullptr;
    }
    return b;
}

Buffer* BlockCache::get_zeroed(uint64_t block) {
    Buffer* b = find(block);
    if (!b) b = insert(block);
    if (b) memset(b->data, 0, block_size_);
    return b;
}

void BlockCache::mark_dirty(Buffer& b) {
    if (b.dirty) return;
    if (!dirty_.push_back(&b)) return;  // no memory: the change stays, uncommitted
    b.dirty = true;
}

void BlockCache::forget(uint64_t block) {
    Buffer** link = &buckets_[block % kBuckets];
    while (*link && (*link)->block != block) link = &(*link)->next;
    Buffer* b = *link;
    if (!b) return;
    *link = b->next;
    if (b->dirty) {
        for (size_t i = 0; i < dirty_.size(); ++i) {
            if (dirty_[i] == b) {
                dirty_[i] = dirty_.back();
                dirty_.pop_back();
                break;
            }
        }
    }
    destroy(b);
    --count_;
}

void BlockCache::mark_all_clean() {
    for (Buffer* b : dirty_) b->dirty = false;
    dirty_.clear();
}

void BlockCache::trim() {
    if (count_ - dirty_.size() <= kMaxCleanBuffers) return;
    for (Buffer*& head : buckets_) {
        Buffer** link = &head;
        while (*link) {
            Buffer* b = *link;
            if (b->dirty) {
                link = &b->next;
                continue;
            }
            *link = b->next;
            destroy(b);
            --count_;
        }
    }
}

// A damaged volume may name blocks past its device's end: refused here, as an I/O error.
bool BlockCache::on_device(uint64_t block, size_t count) const {
    const uint64_t blocks = device_.sector_count() / (block_size_ / block::kSectorSize);
    return block < blocks && count <= blocks - block;
}

int BlockCache::read_blocks(uint64_t block, void* data, size_t count) {
    if (!on_device(block, count)) return -EIO;
    const uint64_t per_block = block_size_ / block::kSectorSize;
    return device_.read(block * per_block, data, count * block_size_);
}

int BlockCache::write_blocks(uint64_t block, const void* data, size_t count) {
    if (!on_device(block, count)) return -EIO;
    const uint64_t per_block = block_size_ / block::kSectorSize;
    return device_.write(block * per_block, data, count * block_size_);
}

}  // namespace kiln::fs::ext4
