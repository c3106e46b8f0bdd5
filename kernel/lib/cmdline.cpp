#include "lib/cmdline.h"

namespace kiln {

Cmdline::Error Cmdline::parse(StringView text) {
    token_count_ = 0;
    separator_ = -1;
    error_ = Error::kNone;
    if (text.size() > kMaxLength) return error_ = Error::kTooLong;

    size_t out = 0;  // the unquoted text never grows, so it fits in buffer_
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n')) ++i;
        if (i == text.size()) break;
        if (token_count_ == kMaxTokens) {
            token_count_ = 0;
            return error_ = Error::kTooManyTokens;
        }
        const size_t start = out;
        bool quoted_token = false;
        bool in_quotes = false;
        while (i < text.size()) {
            char c = text[i];
            if (!in_quotes && (c == ' ' || c == '\t' || c == '\n')) break;
            if (c == '"') {
                in_quotes = !in_quotes;
                quoted_token = true;
                ++i;
                continue;
            }
            if (in_quotes && c == '\\' && i + 1 < text.size() && (text[i + 1] == '"' || text[i + 1] == '\\')) {
                ++i;
                c = text[i];
            }
            buffer_[out++] = c;
            ++i;
        }
        if (in_quotes) {
            token_count_ = 0;
            separator_ = -1;
            return error_ = Error::kUnterminatedQuote;
        }
        buffer_[out++] = '\0';
        tokens_[token_count_] = &buffer_[start];
        // Only a bare `--` separates; a quoted "--" is an ordinary word.
        if (separator_ < 0 && !quoted_token && out - start == 3 && buffer_[start] == '-' && buffer_[start + 1] == '-')
            separator_ = static_cast<long>(token_count_);
        ++token_count_;
    }
    return Error::kNone;
}

const char* Cmdline::describe(Error error) {
    switch (error) {
        case Error::kNone: return "ok";
        case Error::kTooLong: return "command line longer than 4096 bytes";
        case Error::kTooManyTokens: return "command line has more than 256 words";
        case Error::kUnterminatedQuote: return "command line has an unterminated double quote";
    }
    return "unknown error";
}

Cmdline::Param Cmdline::param(size_t index) const {
    StringView token(tokens_[index]);
    size_t eq = token.find('=');
    if (eq == StringView::npos) return {token, {}};
    return {token.substr(0, eq), token.substr(eq + 1)};
}

bool Cmdline::find(StringView key, StringView& value) const {
    bool found = false;
    for (size_t i = 0; i < param_count(); ++i) {
        Param p = param(i);
        if (p.key == key) {
            value = p.value;
            found = true;
        }
    }
    return found;
}

bool Cmdline::has(StringView key) const {
    StringView ignored;
    return find(key, ignored);
}

bool Cmdline::flag(StringView key) const {
    StringView value;
    if (!find(key, value)) return false;
    return value.empty() || value == "1" || value == "yes" || value == "true" || value == "on";
}

bool Cmdline::number(StringView key, uint64_t& value) const {
    StringView text;
    return find(key, text) && parse_u64(text, value);
}

}  // namespace kiln
