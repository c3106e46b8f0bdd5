#include "balancer/http_exchange.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

namespace kiln::balancer {

namespace {

// Sends what it can of `buffer`; false on a hard error.
bool send_some(int fd, std::string& buffer) {
    while (!buffer.empty()) {
        const ssize_t n = ::send(fd, buffer.data(), buffer.size(), MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN;
        buffer.erase(0, static_cast<size_t>(n));
    }
    return true;
}

}  // namespace

void HttpExchange::refuse(const char* status) {
    to_client_.append("HTTP/1.1 ").append(status).append("\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    closing_ = true;
}

bool HttpExchange::read_client() {
    char buffer[65536];
    while (!client_ended_ && !closing_ && from_client_.size() + to_upstream_.size() < kBufferLimit) {
        const ssize_t n = ::recv(client_, buffer, sizeof(buffer), 0);
        if (n > 0) {
            from_client_.append(buffer, static_cast<size_t>(n));
        } else if (n == 0) {
            client_ended_ = true;
        } else {
            return errno == EAGAIN;
        }
    }
    return true;
}

// Moves the current request's bytes from what the client sent to what goes upstream.
bool HttpExchange::forward_request() {
    if (request_.done() || from_client_.empty()) return true;
    const size_t used = request_.feed(from_client_.data(), from_client_.size());
    to_upstream_.append(from_client_, 0, used);
    from_client_.erase(0, used);
    if (request_.failed()) {
        if (attached()) return false;  // cut off mid-body: nothing sensible to answer
        refuse("400 Bad Request");
    }
    return true;
}

HttpExchange::Next HttpExchange::upstream_io() {
    if (!send_some(upstream_, to_upstream_)) return Next::kClose;
    char buffer[65536];
    while (!response_.done() && to_client_.size() < kBufferLimit) {
        const ssize_t n = ::recv(upstream_, buffer, sizeof(buffer), 0);
        if (n < 0) {
            if (errno == EAGAIN) break;
            return Next::kClose;
        }
        if (n == 0) {
            response_.end_of_stream();
            if (!response_.done()) return Next::kClose;  // cut short: the client must see it fail
            break;
        }
        // Bytes past the response's end (a server talking out of turn) are dropped.
        for (size_t at = 0; at < static_cast<size_t>(n) && !response_.done();) {
            const size_t used = response_.feed(buffer + at, static_cast<size_t>(n) - at);
            to_client_.append(buffer + at, used);
            at += used;
            if (response_.failed()) return Next::kClose;
            const bool interim = response_.done() && response_.status() / 100 == 1 && response_.status() != 101;
            if (interim) response_ = HttpFraming(HttpFraming::Kind::kResponse, request_.is_head_request());
        }
    }
    if (!response_.done()) return Next::kContinue;
    // The response is whole. The connection may carry the next request if both sides said so and
    // the request was read to its end (a server may answer before reading a body it refuses).
    if (!(request_.keep_alive() && response_.keep_alive() && request_.done())) closing_ = true;
    request_ = HttpFraming(HttpFraming::Kind::kRequest);
    response_ = HttpFraming(HttpFraming::Kind::kResponse);
    to_upstream_.clear();
    upstream_ = -1;
    asked_ = false;
    return Next::kRequestDone;
}

bool HttpExchange::write_client() { return send_some(client_, to_client_); }

void HttpExchange::attach(int upstream) {
    upstream_ = upstream;
    response_ = HttpFraming(HttpFraming::Kind::kResponse, request_.is_head_request());
}

HttpExchange::Next HttpExchange::pump() {
    if (!read_client() || !forward_request()) return Next::kClose;
    if (attached()) {
        const Next next = upstream_io();
        if (next != Next::kContinue) {
            if (next == Next::kRequestDone) write_client();
            return next;
        }
    }
    if (!write_client()) return Next::kClose;
    if (closing_ && !attached()) {
        if (!to_client_.empty()) return Next::kContinue;
        ::shutdown(client_, SHUT_WR);
        return Next::kClose;
    }
    if (request_.head_done() && !attached() && !asked_) {
        asked_ = true;
        return Next::kNeedBackend;
    }
    // The client left between requests (or mid-head): nothing more will come.
    if (client_ended_ && !request_.head_done() && !attached() && to_client_.empty()) return Next::kClose;
    return Next::kContinue;
}

Interest HttpExchange::interest() const {
    Interest i;
    if (!client_ended_ && !closing_ && from_client_.size() + to_upstream_.size() < kBufferLimit) i.client |= EPOLLIN;
    if (!to_client_.empty()) i.client |= EPOLLOUT;
    if (attached()) {
        if (!to_upstream_.empty()) i.upstream |= EPOLLOUT;
        if (!response_.done()) i.upstream |= EPOLLIN;
    }
    return i;
}

}  // namespace kiln::balancer
