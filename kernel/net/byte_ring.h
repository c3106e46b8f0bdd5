// A ring of bytes that grows on demand up to a limit: TCP's send and receive buffers. Starting
// small keeps a thousand idle connections cheap; a busy one grows to its full window.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fs/node.h"

namespace kiln::net {

class ByteRing {
  public:
    explicit ByteRing(size_t limit) : limit_(limit) {}
    ByteRing(const ByteRing&) = delete;
    ByteRing& operator=(const ByteRing&) = delete;
    ~ByteRing();

    size_t size() const { return size_; }
    size_t limit() const { return limit_; }
    size_t space() const { return limit_ > size_ ? limit_ - size_ : 0; }
    void set_limit(size_t limit) { limit_ = limit; }

    // Appends up to `n` bytes from `source` (at `offset` in it); returns how many, or -EFAULT.
    int64_t append(const fs::IoBuffer& source, size_t offset, size_t n);
    int64_t append(const uint8_t* data, size_t n);
    // Copies `n` bytes starting `offset` bytes into the ring, without consuming them.
    int64_t copy_out(size_t offset, const fs::IoBuffer& target, size_t target_offset, size_t n) const;
    void copy_out(size_t offset, uint8_t* target, size_t n) const;
    void consume(size_t n);
    // Frees the storage (TIME_WAIT keeps the connection, not its buffers).
    void release();

  private:
    bool grow(size_t needed);
    uint8_t* data_ = nullptr;
    size_t capacity_ = 0;
    size_t start_ = 0;
    size_t size_ = 0;
    size_t limit_;
};

}  // namespace kiln::net
