#include "fs/cpio.h"

namespace kiln::fs {
namespace {

constexpr size_t kHeaderSize = 110;
constexpr size_t kFieldCount = 13;
constexpr size_t kMaxName = 8192;  // a path of up to 4096 bytes, and its padding to a page

size_t pad4(size_t v) { return (v + 3) & ~size_t{3}; }

}  // namespace

const char* CpioReader::describe(CpioError error) {
    switch (error) {
        case CpioError::kNone: return "ok";
        case CpioError::kCompressed: return "the initrd is compressed; Kiln takes an uncompressed cpio (newc) archive";
        case CpioError::kBadMagic: return "not a cpio newc archive (bad magic)";
        case CpioError::kTruncated: return "the archive is truncated";
        case CpioError::kBadNumber: return "a header field is not a hexadecimal number";
        case CpioError::kBadName: return "an entry has a bad name";
        case CpioError::kMissingTrailer: return "the archive has no TRAILER!!! entry";
    }
    return "unknown error";
}

bool CpioReader::field(size_t index, uint32_t& out) const {
    const uint8_t* p = data_ + position_ + 6 + index * 8;
    uint32_t v = 0;
    for (int i = 0; i < 8; ++i) {
        const uint8_t c = p[i];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return false;
        v = (v << 4) | d;
    }
    out = v;
    return true;
}

bool CpioReader::next(CpioEntry& entry) {
    if (done_ || error_ != CpioError::kNone) return false;
    offset_ = position_;
    if (position_ == 0 && size_ >= 2 &&
        ((data_[0] == 0x1f && data_[1] == 0x8b) || (data_[0] == 0xfd && data_[1] == '7') ||
         (data_[0] == 0x28 && data_[1] == 0xb5)))
        return fail(CpioError::kCompressed);
    if (position_ >= size_ || size_ - position_ < kHeaderSize)
        return fail(position_ >= size_ ? CpioError::kMissingTrailer : CpioError::kTruncated);
    const uint8_t* h = data_ + position_;
    if (!(h[0] == '0' && h[1] == '7' && h[2] == '0' && h[3] == '7' && h[4] == '0' && (h[5] == '1' || h[5] == '2')))
        return fail(CpioError::kBadMagic);
    uint32_t fields[kFieldCount];
    for (size_t i = 0; i < kFieldCount; ++i)
        if (!field(i, fields[i])) return fail(CpioError::kBadNumber);
    const uint32_t mode = fields[1];
    const uint32_t file_size = fields[6];
    const uint32_t name_size = fields[11];
    if (name_size == 0 || name_size > kMaxName) return fail(CpioError::kBadName);
    const size_t name_at = position_ + kHeaderSize;
    if (size_ - name_at < name_size) return fail(CpioError::kTruncated);
    if (data_[name_at + name_size - 1] != '\0') return fail(CpioError::kBadName);
    // The name ends at its first NUL; more NULs may follow it, which writers use to start a
    // file's data on a page boundary (kiln's initrds do: the kernel then maps those pages in
    // place). Anything else after a NUL is not a name.
    size_t name_length = 0;
    while (data_[name_at + name_length] != '\0') ++name_length;
    for (size_t i = name_length; i < name_size; ++i)
        if (data_[name_at + i] != '\0') return fail(CpioError::kBadName);
    StringView name(reinterpret_cast<const char*>(data_ + name_at), name_length);
    const size_t data_at = pad4(name_at + name_size);
    if (data_at > size_ || size_ - data_at < file_size) return fail(CpioError::kTruncated);
    position_ = pad4(data_at + file_size);
    if (name == "TRAILER!!!") {
        done_ = true;
        return false;
    }
    entry = {name, mode, fields[2], fields[3], data_ + data_at, file_size};
    return true;
}

}  // namespace kiln::fs
