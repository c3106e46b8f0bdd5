#include "balancer/http_framing.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace kiln::balancer {

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.remove_suffix(1);
    return text;
}

// A decimal Content-Length, or false (empty, signs, overflow).
bool parse_length(std::string_view text, uint64_t& out) {
    if (text.empty() || text.size() > 18) return false;
    out = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
}

}  // namespace

HttpFraming::HttpFraming(Kind kind, bool response_to_head) : kind_(kind), response_to_head_(response_to_head) {}

size_t HttpFraming::feed(const char* data, size_t size) {
    size_t used = 0;
    while (used < size && state_ != State::kDone && state_ != State::kError) {
        switch (state_) {
            case State::kHead: {
                // Byte by byte up to the blank line: the head must not swallow the body.
                head_.push_back(data[used++]);
                if (head_.size() > kMaxHead) {
                    state_ = State::kError;
                } else if (head_.size() >= 4 && head_.compare(head_.size() - 4, 4, "\r\n\r\n") == 0) {
                    if (!parse_head()) state_ = State::kError;
                }
                break;
            }
            case State::kLengthBody: {
                const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, size - used));
                used += n;
                remaining_ -= n;
                if (remaining_ == 0) state_ = State::kDone;
                break;
            }
            case State::kUntilClose: used = size; break;
            default: used += feed_chunked(data + used, size - used); break;
        }
    }
    return used;
}

size_t HttpFraming::feed_chunked(const char* data, size_t size) {
    size_t used = 0;
    auto line_done = [&](char c) {  // collects a line; true at its end
        head_.push_back(c);
        if (head_.size() > 4096) state_ = State::kError;
        return head_.size() >= 2 && head_.compare(head_.size() - 2, 2, "\r\n") == 0;
    };
    while (used < size && state_ != State::kDone && state_ != State::kError) {
        if (state_ == State::kChunkData) {
            const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, size - used));
            used += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = State::kChunkDataEnd;
            continue;
        }
        const char c = data[used++];
        if (!line_done(c)) continue;
        const std::string line = head_.substr(0, head_.size() - 2);
        head_.clear();
        if (state_ == State::kChunkDataEnd) {
            state_ = line.empty() ? State::kChunkSize : State::kError;
        } else if (state_ == State::kChunkSize) {
            const std::string_view digits = trim(std::string_view(line).substr(0, line.find(';')));
            if (digits.empty() || digits.size() > 15 ||
                !std::all_of(digits.begin(), digits.end(), [](unsigned char d) { return std::isxdigit(d); })) {
                state_ = State::kError;
                break;
            }
            remaining_ = std::stoull(std::string(digits), nullptr, 16);
            state_ = remaining_ == 0 ? State::kTrailer : State::kChunkData;
        } else if (state_ == State::kTrailer && line.empty()) {
            state_ = State::kDone;
        }
    }
    return used;
}

bool HttpFraming::parse_head() {
    std::string_view text(head_);
    const size_t first_end = text.find("\r\n");
    const std::string_view first = text.substr(0, first_end);
    bool http10 = false, chunked = false, has_length = false, close = false, keep = false;
    uint64_t length = 0;
    if (kind_ == Kind::kRequest) {
        // METHOD SP TARGET SP HTTP/1.x
        const size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
        if (sp1 == std::string_view::npos || sp2 == sp1 || first.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) return false;
        head_request_ = first.substr(0, sp1) == "HEAD";
        http10 = first.substr(sp2 + 1) == "HTTP/1.0";
    } else {
        // HTTP/1.x SP 3DIGIT SP reason
        if (first.size() < 12 || first.rfind("HTTP/1.", 0) != 0 || first[8] != ' ') return false;
        const std::string_view code = first.substr(9, 3);
        if (!std::all_of(code.begin(), code.end(), [](unsigned char d) { return std::isdigit(d); })) return false;
        status_ = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
        http10 = first.substr(0, 8) == "HTTP/1.0";
    }
    for (size_t at = first_end + 2; at < text.size();) {
        const size_t end = text.find("\r\n", at);
        const std::string_view line = text.substr(at, end - at);
        at = end + 2;
        if (line.empty()) break;
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        const std::string name = lower(line.substr(0, colon));
        const std::string value = lower(trim(line.substr(colon + 1)));
        if (name == "content-length") {
            uint64_t n = 0;
            if (!parse_length(value, n) || (has_length && n != length)) return false;  // smuggling
            has_length = true;
            length = n;
        } else if (name == "transfer-encoding") {
            chunked = value.find("chunked") != std::string::npos;
            if (!chunked) return false;  // other codings cannot be framed
        } else if (name == "connection") {
            close = close || value.find("close") != std::string::npos;
            keep = keep || value.find("keep-alive") != std::string::npos;
        }
    }
    if (chunked && has_length) return false;  // ambiguous framing: refused, never guessed
    keep_alive_ = !close && (!http10 || keep);
    head_.clear();
    const bool no_body =
        kind_ == Kind::kResponse && (response_to_head_ || status_ / 100 == 1 || status_ == 204 || status_ == 304);
    if (no_body || (!chunked && has_length && length == 0)) {
        state_ = State::kDone;
    } else if (chunked) {
        state_ = State::kChunkSize;
    } else if (has_length) {
        remaining_ = length;
        state_ = State::kLengthBody;
    } else if (kind_ == Kind::kRequest) {
        state_ = State::kDone;  // a request without either has no body
    } else {
        state_ = State::kUntilClose;
        keep_alive_ = false;
    }
    return true;
}

void HttpFraming::end_of_stream() {
    if (state_ == State::kUntilClose) state_ = State::kDone;
}

}  // namespace kiln::balancer
