// A reader for cpio "newc" archives (the initrd format), checking every header and length.
// Freestanding; also built into the host unit tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/string_view.h"

namespace kiln::fs {

struct CpioEntry {
    StringView name;  // as stored, without the NUL
    uint32_t mode;    // type and permission bits
    uint32_t uid;     // the owner
    uint32_t gid;
    const uint8_t* data;
    size_t size;
};

enum class CpioError {
    kNone,
    kCompressed,  // gzip, xz, zstd...: not supported
    kBadMagic,
    kTruncated,
    kBadNumber,
    kBadName,
    kMissingTrailer,
};

class CpioReader {
  public:
    CpioReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

    // The next entry; false at the end (the trailer) or on an error (see error()).
    bool next(CpioEntry& entry);
    CpioError error() const { return error_; }
    size_t offset() const { return offset_; }  // where the last header started
    static const char* describe(CpioError error);

  private:
    bool fail(CpioError e) {
        error_ = e;
        return false;
    }
    bool field(size_t index, uint32_t& out) const;

    const uint8_t* data_;
    size_t size_;
    size_t offset_ = 0;
    size_t position_ = 0;
    bool done_ = false;
    CpioError error_ = CpioError::kNone;
};

}  // namespace kiln::fs
