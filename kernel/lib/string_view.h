// A non-owning view of characters and number parsing. Freestanding, and also compiled into the
// host unit tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln {

// A non-owning view of characters, like std::string_view (whose header is not freestanding).
class StringView {
  public:
    constexpr StringView() = default;
    constexpr StringView(const char* data, size_t size) : data_(data), size_(size) {}
    constexpr StringView(const char* s) : data_(s), size_(length_of(s)) {}

    constexpr const char* data() const { return data_; }
    constexpr size_t size() const { return size_; }
    constexpr bool empty() const { return size_ == 0; }
    constexpr char operator[](size_t i) const { return data_[i]; }
    constexpr const char* begin() const { return data_; }
    constexpr const char* end() const { return data_ + size_; }

    constexpr StringView substr(size_t pos, size_t count = static_cast<size_t>(-1)) const {
        if (pos > size_) pos = size_;
        if (count > size_ - pos) count = size_ - pos;
        return {data_ + pos, count};
    }
    constexpr bool starts_with(StringView prefix) const {
        return prefix.size_ <= size_ && substr(0, prefix.size_) == prefix;
    }
    constexpr size_t find(char c, size_t from = 0) const {
        for (size_t i = from; i < size_; ++i)
            if (data_[i] == c) return i;
        return npos;
    }
    friend constexpr bool operator==(StringView a, StringView b) {
        if (a.size_ != b.size_) return false;
        for (size_t i = 0; i < a.size_; ++i)
            if (a.data_[i] != b.data_[i]) return false;
        return true;
    }

    static constexpr size_t npos = static_cast<size_t>(-1);

  private:
    static constexpr size_t length_of(const char* s) {
        size_t n = 0;
        while (s[n] != '\0') ++n;
        return n;
    }
    const char* data_ = "";
    size_t size_ = 0;
};

// Parses an unsigned decimal (or 0x-prefixed hexadecimal) number. False on junk or overflow.
bool parse_u64(StringView text, uint64_t& out);

}  // namespace kiln
