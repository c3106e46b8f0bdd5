#include "net/byte_ring.h"

#include "core/errno.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "mm/heap.h"

namespace kiln::net {

ByteRing::~ByteRing() { heap::free(data_); }

void ByteRing::release() {
    heap::free(data_);
    data_ = nullptr;
    capacity_ = start_ = size_ = 0;
}

bool ByteRing::grow(size_t needed) {
    if (needed <= capacity_) return true;
    size_t fresh = capacity_ == 0 ? 4096 : capacity_;
    while (fresh < needed) fresh *= 2;
    fresh = min(fresh, limit_);
    if (fresh < needed) return false;
    auto* bytes = static_cast<uint8_t*>(heap::allocate(fresh));
    if (bytes == nullptr) return false;
    copy_out(0, bytes, size_);
    heap::free(data_);
    data_ = bytes;
    capacity_ = fresh;
    start_ = 0;
    return true;
}

int64_t ByteRing::append(const fs::IoBuffer& source, size_t offset, size_t n) {
    n = min(n, space());
    if (n == 0) return 0;
    if (!grow(size_ + n)) {
        n = capacity_ - size_;
        if (n == 0) return 0;
    }
    size_t done = 0;
    while (done < n) {
        const size_t at = (start_ + size_) % capacity_;
        const size_t run = min(n - done, capacity_ - at);
        if (source.copy_in(offset + done, data_ + at, run) != 0) return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
        size_ += run;
        done += run;
    }
    return static_cast<int64_t>(n);
}

int64_t ByteRing::append(const uint8_t* data, size_t n) { return append(fs::IoBuffer::kernel(data), 0, n); }

int64_t ByteRing::copy_out(size_t offset, const fs::IoBuffer& target, size_t target_offset, size_t n) const {
    size_t done = 0;
    while (done < n) {
        const size_t at = (start_ + offset + done) % capacity_;
        const size_t run = min(n - done, capacity_ - at);
        if (target.copy_out(target_offset + done, data_ + at, run) != 0) return -EFAULT;
        done += run;
    }
    return static_cast<int64_t>(n);
}

void ByteRing::copy_out(size_t offset, uint8_t* target, size_t n) const {
    (void)copy_out(offset, fs::IoBuffer::kernel(target), 0, n);
}

void ByteRing::consume(size_t n) {
    n = min(n, size_);
    size_ -= n;
    start_ = size_ == 0 ? 0 : (start_ + n) % capacity_;
}

}  // namespace kiln::net
