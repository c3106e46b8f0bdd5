// The CLI's HTTP/1.1 client: one request per connection, to kilnd's unix socket or to a remote
// kilnd over TCP (TLS for https://, through OpenSSL).
//
// Written here rather than taken from cpp-httplib, which kilnd serves with: Debian ships that
// library only as a shared object built with OpenSSL, brotli and zlib, and loading it cost 6 ms of
// every command's 16 ms start on this machine (300 page faults, docs/benchmarks.md). The CLI asks
// one daemon of ours for JSON, so the subset it needs is small: Content-Length and chunked
// answers, streamed or whole, and a bearer token.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace kiln::cli {

struct Endpoint {
    std::string unix_socket;  // a path: kilnd's local socket; empty: host and port over TCP
    std::string host;
    uint16_t port = 0;
    bool tls = false;
    std::string ca_cert;  // for TLS: the CA (or self-signed certificate) to trust; empty: the system's
};

// "http://HOST[:PORT]" or "https://HOST[:PORT]" (an IPv6 host in brackets); throws
// std::invalid_argument naming what is wrong.
Endpoint parse_url(const std::string& url);

struct HttpRequest {
    std::string method = "GET";
    std::string target;  // "/v1/instances?x=y"
    std::string content_type;
    std::string body;
    std::string bearer_token;
};

struct HttpTimeouts {
    int connect_ms = 2000;
    int read_ms = 600 * 1000;  // between two pieces of an answer
};

// Sends `request` and reads the answer. The head's status goes to `on_status` before any of the
// body; each piece of the body (chunked encoding undone) goes to `on_piece`, which stops the
// transfer by returning false. Throws std::runtime_error naming the endpoint when it cannot
// connect, a timeout passes or the answer is not HTTP.
void exchange(const Endpoint& endpoint, const HttpRequest& request, const HttpTimeouts& timeouts,
              const std::function<void(int status)>& on_status,
              const std::function<bool(const char*, size_t)>& on_piece);

struct HttpResponse {
    int status = 0;
    std::string body;
};
HttpResponse exchange(const Endpoint& endpoint, const HttpRequest& request, const HttpTimeouts& timeouts = {});

std::string describe(const Endpoint& endpoint);  // for messages: the socket's path or the URL
// Whether a unix-socket endpoint takes a connection now (nothing is sent): false for any other.
bool accepts_connections(const Endpoint& endpoint);

// Reads one answer from `source` (the bytes as they come, 0 at their end) as exchange() does;
// apart for the fuzz target. `endpoint` only names the peer in errors.
using ByteSource = std::function<size_t(char* buffer, size_t size)>;
void read_answer(const ByteSource& source, const Endpoint& endpoint, const std::function<void(int status)>& on_status,
                 const std::function<bool(const char*, size_t)>& on_piece);

}  // namespace kiln::cli
