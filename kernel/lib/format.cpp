#include "lib/format.h"

namespace kiln {
namespace {

struct Spec {
    bool hex = false;
    bool prefix = false;
    bool zero_pad = false;
    bool left = false;
    size_t width = 0;
};

Spec parse_spec(StringView text) {
    Spec spec;
    size_t i = 0;
    if (i < text.size() && text[i] == '<') {
        spec.left = true;
        ++i;
    }
    if (i < text.size() && text[i] == '#') {
        spec.prefix = true;
        ++i;
    }
    if (i < text.size() && text[i] == '0') {
        spec.zero_pad = true;
        ++i;
    }
    constexpr size_t kMaxWidth = 64;  // a width is for alignment, not for filling memory
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        spec.width = spec.width * 10 + static_cast<size_t>(text[i] - '0');
        if (spec.width > kMaxWidth) spec.width = kMaxWidth;
        ++i;
    }
    if (i < text.size() && text[i] == 'x') spec.hex = true;
    return spec;
}

void pad(Sink& sink, size_t count, char c) {
    for (size_t i = 0; i < count; ++i) sink.write(&c, 1);
}

void write_padded(Sink& sink, const Spec& spec, const char* data, size_t size) {
    size_t fill = spec.width > size ? spec.width - size : 0;
    if (!spec.left) pad(sink, fill, spec.zero_pad ? '0' : ' ');
    sink.write(data, size);
    if (spec.left) pad(sink, fill, ' ');
}

void write_number(Sink& sink, const Spec& spec, uint64_t value, bool negative) {
    char digits[24];
    size_t n = 0;
    const uint64_t base = spec.hex ? 16 : 10;
    do {
        uint64_t d = value % base;
        digits[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
        value /= base;
    } while (value != 0);
    char text[32];
    size_t len = 0;
    if (negative) text[len++] = '-';
    if (spec.prefix && spec.hex) {
        text[len++] = '0';
        text[len++] = 'x';
    }
    size_t head = len;
    // Zero padding goes between the sign/prefix and the digits.
    if (spec.zero_pad && !spec.left && spec.width > head + n) {
        size_t zeros = spec.width - head - n;
        if (zeros > sizeof(text) - head - n) zeros = sizeof(text) - head - n;
        for (size_t i = 0; i < zeros; ++i) text[len++] = '0';
    }
    while (n > 0) text[len++] = digits[--n];
    Spec rest = spec;
    rest.zero_pad = false;
    write_padded(sink, rest, text, len);
}

void write_arg(Sink& sink, const Spec& spec, const FormatArg& arg) {
    switch (arg.kind) {
        case FormatArg::Kind::kUnsigned: write_number(sink, spec, arg.u, false); break;
        case FormatArg::Kind::kSigned: {
            bool negative = arg.i < 0;
            uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(arg.i) : static_cast<uint64_t>(arg.i);
            write_number(sink, spec, magnitude, negative);
            break;
        }
        case FormatArg::Kind::kString: write_padded(sink, spec, arg.s, arg.length); break;
        case FormatArg::Kind::kChar: write_padded(sink, spec, &arg.c, 1); break;
        case FormatArg::Kind::kBool: write_padded(sink, spec, arg.b ? "true" : "false", arg.b ? 4 : 5); break;
        case FormatArg::Kind::kPointer: {
            Spec hex = spec;
            hex.hex = true;
            hex.prefix = true;
            write_number(sink, hex, reinterpret_cast<uintptr_t>(arg.p), false);
            break;
        }
    }
}

}  // namespace

void vformat(Sink& sink, StringView fmt, const FormatArg* args, size_t count) {
    size_t next = 0;
    size_t i = 0;
    while (i < fmt.size()) {
        char c = fmt[i];
        if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
            sink.write("{", 1);
            i += 2;
            continue;
        }
        if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
            sink.write("}", 1);
            i += 2;
            continue;
        }
        if (c == '{') {
            size_t close = fmt.find('}', i);
            if (close == StringView::npos) break;
            StringView inside = fmt.substr(i + 1, close - i - 1);
            Spec spec = inside.starts_with(":") ? parse_spec(inside.substr(1)) : Spec{};
            if (next < count)
                write_arg(sink, spec, args[next++]);
            else
                sink.write("{?}", 3);
            i = close + 1;
            continue;
        }
        size_t start = i;
        while (i < fmt.size() && fmt[i] != '{' && fmt[i] != '}') ++i;
        if (i == start) ++i;  // a lone '}'
        sink.write(fmt.data() + start, i - start);
    }
}

void BufferSink::write(const char* data, size_t size) {
    if (capacity_ == 0) return;
    size_t room = capacity_ - 1 - size_;
    size_t n = size < room ? size : room;
    for (size_t i = 0; i < n; ++i) buffer_[size_ + i] = data[i];
    size_ += n;
    buffer_[size_] = '\0';
}

}  // namespace kiln
