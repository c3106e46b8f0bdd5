// Type-safe formatting with `{}` placeholders, in the spirit of std::format (not freestanding).
// Supported specs: `{}`, `{:x}`, `{:#x}`, `{:016x}`, `{:8}` (right-aligned width), `{:<8}`.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/string_view.h"

namespace kiln {

class Sink {
  public:
    virtual void write(const char* data, size_t size) = 0;

  protected:
    ~Sink() = default;
};

struct FormatArg {
    enum class Kind { kUnsigned, kSigned, kString, kChar, kBool, kPointer } kind;
    union {
        uint64_t u;
        int64_t i;
        const char* s;
        char c;
        bool b;
        const void* p;
    };
    size_t length = 0;  // for strings

    template <typename T>
    static FormatArg from(T value) {
        FormatArg a{};
        if constexpr (__is_same(T, bool)) {
            a.kind = Kind::kBool;
            a.b = value;
        } else if constexpr (__is_same(T, char)) {
            a.kind = Kind::kChar;
            a.c = value;
        } else if constexpr (__is_enum(T)) {
            a.kind = Kind::kUnsigned;
            a.u = static_cast<uint64_t>(value);
        } else if constexpr (static_cast<T>(-1) < static_cast<T>(0)) {
            a.kind = Kind::kSigned;
            a.i = value;
        } else {
            a.kind = Kind::kUnsigned;
            a.u = value;
        }
        return a;
    }
    static FormatArg from(const char* s) {
        FormatArg a{};
        a.kind = Kind::kString;
        a.s = s != nullptr ? s : "(null)";
        a.length = StringView(a.s).size();
        return a;
    }
    static FormatArg from(char* s) { return from(static_cast<const char*>(s)); }
    static FormatArg from(StringView s) {
        FormatArg a{};
        a.kind = Kind::kString;
        a.s = s.data();
        a.length = s.size();
        return a;
    }
    template <typename T>
    static FormatArg from(T* p) {
        FormatArg a{};
        a.kind = Kind::kPointer;
        a.p = p;
        return a;
    }
};

void vformat(Sink& sink, StringView fmt, const FormatArg* args, size_t count);

template <typename... Args>
void format_to(Sink& sink, StringView fmt, const Args&... args) {
    if constexpr (sizeof...(Args) == 0) {
        vformat(sink, fmt, nullptr, 0);
    } else {
        const FormatArg list[] = {FormatArg::from(args)...};
        vformat(sink, fmt, list, sizeof...(Args));
    }
}

// Formats into a fixed buffer, always NUL-terminated, truncating if needed. Returns the length
// written (without the NUL).
class BufferSink final : public Sink {
  public:
    BufferSink(char* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {
        if (capacity_ > 0) buffer_[0] = '\0';
    }
    void write(const char* data, size_t size) override;
    size_t size() const { return size_; }
    StringView view() const { return {buffer_, size_}; }

  private:
    char* buffer_;
    size_t capacity_;
    size_t size_ = 0;
};

template <typename... Args>
size_t format_buffer(char* buffer, size_t capacity, StringView fmt, const Args&... args) {
    BufferSink sink(buffer, capacity);
    format_to(sink, fmt, args...);
    return sink.size();
}

}  // namespace kiln
