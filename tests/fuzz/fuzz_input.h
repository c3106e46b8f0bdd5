// A fuzz input read front to back as the fields a target lays out: each field takes the next
// bytes, and past the input's end it reads as zeros, so every input, however short, is whole.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace kiln::fuzz {

class FuzzInput {
  public:
    FuzzInput(const uint8_t* data, size_t size) : data_(data), size_(size) {}
    template <typename T>
    T take() {
        T value{};
        const size_t n = std::min(sizeof(T), size_ - at_);
        std::memcpy(&value, data_ + at_, n);
        at_ += n;
        return value;
    }
    // Up to `n` bytes, fewer at the input's end.
    std::span<const uint8_t> bytes(size_t n) {
        n = std::min(n, size_ - at_);
        const std::span<const uint8_t> out(data_ + at_, n);
        at_ += n;
        return out;
    }
    const uint8_t* rest() const { return data_ + at_; }
    size_t rest_size() const { return size_ - at_; }

  private:
    const uint8_t* data_;
    size_t size_;
    size_t at_ = 0;
};

}  // namespace kiln::fuzz
