// The kernel command line: `key=value` parameters, then `--`, then the application's argv
// (Unikraft's convention, ARCHITECTURE.md §3). Double quotes group words: `env.GREETING="hi there"`,
// `-- /bin/echo "two words"`; inside quotes, \" and \\ stand for " and \.
//
// Freestanding and allocation-free: tokens are unquoted into an owned buffer, each NUL-terminated,
// so that argv can later be handed to the application as C strings. Also built into host tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/string_view.h"

namespace kiln {

class Cmdline {
  public:
    static constexpr size_t kMaxLength = 4096;
    static constexpr size_t kMaxTokens = 256;

    enum class Error { kNone, kTooLong, kTooManyTokens, kUnterminatedQuote };

    // Parses `text`; on error the command line is left empty and error() says why.
    Error parse(StringView text);
    Error error() const { return error_; }
    static const char* describe(Error error);

    struct Param {
        StringView key;
        StringView value;  // empty for a bare `flag`
    };

    size_t param_count() const { return separator_ < 0 ? token_count_ : static_cast<size_t>(separator_); }
    Param param(size_t index) const;
    // The value of the last parameter named `key`, if any.
    bool find(StringView key, StringView& value) const;
    bool has(StringView key) const;
    // `key=1`, `key=yes`, `key=true`, or a bare `key`, count as true.
    bool flag(StringView key) const;
    // A numeric parameter; false if absent or not a number.
    bool number(StringView key, uint64_t& value) const;

    // Whether `--` was present, and the words after it.
    bool has_app() const { return separator_ >= 0; }
    size_t app_argc() const { return has_app() ? token_count_ - static_cast<size_t>(separator_) - 1 : 0; }
    const char* app_arg(size_t index) const { return tokens_[static_cast<size_t>(separator_) + 1 + index]; }

  private:
    char buffer_[kMaxLength + 1] = {};
    const char* tokens_[kMaxTokens] = {};
    size_t token_count_ = 0;
    long separator_ = -1;
    Error error_ = Error::kNone;
};

}  // namespace kiln
