// Where one HTTP/1.1 message ends in a byte stream, for the balancer's http handler. The bytes
// themselves pass through unchanged; this only reads the head (request or status line, and the
// Content-Length, Transfer-Encoding and Connection headers) and then counts the body: by
// Content-Length, by chunks, or until the connection closes (a response without either).
//
// Hand-written rather than a library: the balancer needs message boundaries only, never parsed
// values, and Debian's HTTP parsers (http-parser, deprecated upstream) would still need this
// state machine around them. Heads are bounded (64 KiB), and the fuzz target checks it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace kiln::balancer {

class HttpFraming {
  public:
    enum class Kind { kRequest, kResponse };
    // A response's framing depends on its request: a HEAD's response has no body.
    explicit HttpFraming(Kind kind, bool response_to_head = false);

    // Takes bytes of the stream; returns how many belong to this message (the rest start the
    // next one). Stops at the end of the message, or at an error.
    size_t feed(const char* data, size_t size);
    // The stream ended: a body delimited by the close is then complete.
    void end_of_stream();

    bool head_done() const { return state_ > State::kHead; }
    bool done() const { return state_ == State::kDone; }
    bool failed() const { return state_ == State::kError; }
    // Once done: may the connection carry another message after this one?
    bool keep_alive() const { return keep_alive_; }
    bool is_head_request() const { return head_request_; }
    int status() const { return status_; }  // responses: the status code

    static constexpr size_t kMaxHead = 64 * 1024;

  private:
    enum class State {
        kHead,
        kLengthBody,
        kChunkSize,
        kChunkData,
        kChunkDataEnd,
        kTrailer,
        kUntilClose,
        kDone,
        kError
    };
    bool parse_head();
    size_t feed_chunked(const char* data, size_t size);

    Kind kind_;
    bool response_to_head_;
    State state_ = State::kHead;
    std::string head_;  // the head so far, then the current chunk-size or trailer line
    uint64_t remaining_ = 0;
    bool keep_alive_ = true;
    bool head_request_ = false;
    int status_ = 0;
};

}  // namespace kiln::balancer
