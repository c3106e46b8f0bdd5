#include "http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace kiln::cli {

namespace {

[[noreturn]] void fail(const Endpoint& endpoint, const std::string& what) {
    throw std::runtime_error("kilnd at " + describe(endpoint) + ": " + what);
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
}

// Waits until `fd` is ready for `events`; false when `timeout_ms` passed first.
bool wait_for(int fd, short events, int timeout_ms) {
    pollfd p{fd, events, 0};
    for (;;) {
        const int n = ::poll(&p, 1, timeout_ms);
        if (n >= 0) return n > 0;
        if (errno != EINTR) return false;
    }
}

int connect_unix(const Endpoint& endpoint) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (endpoint.unix_socket.size() >= sizeof address.sun_path) fail(endpoint, "socket path too long");
    std::memcpy(address.sun_path, endpoint.unix_socket.c_str(), endpoint.unix_socket.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail(endpoint, std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        fail(endpoint, "cannot connect");
    }
    return fd;
}

// A non-blocking connect bounded by the timeout, tried on each address the name resolves to.
int connect_tcp(const Endpoint& endpoint, int timeout_ms) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(endpoint.port);
    if (const int error = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found); error != 0)
        fail(endpoint, std::string("cannot resolve: ") + ::gai_strerror(error));
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (fd < 0) continue;
        int error = 0;
        socklen_t length = sizeof error;
        const bool connected = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
                               (errno == EINPROGRESS && wait_for(fd, POLLOUT, timeout_ms) &&
                                ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0);
        if (!connected) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd < 0) fail(endpoint, "cannot connect");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // reads are bounded by poll
    return fd;
}

std::string tls_error() {
    const unsigned long code = ::ERR_get_error();
    if (code == 0) return "TLS handshake failed";
    char text[256];
    ::ERR_error_string_n(code, text, sizeof text);
    return text;
}

// One connection: a socket, with a TLS session over it for https.
class Connection {
  public:
    Connection(const Endpoint& endpoint, const HttpTimeouts& timeouts) : endpoint_(endpoint), timeouts_(timeouts) {
        fd_ = endpoint.unix_socket.empty() ? connect_tcp(endpoint, timeouts.connect_ms) : connect_unix(endpoint);
        if (endpoint.tls) start_tls();
    }
    ~Connection() {
        if (ssl_) ::SSL_free(ssl_);
        if (context_) ::SSL_CTX_free(context_);
        ::close(fd_);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void write_all(std::string_view data) {
        while (!data.empty()) {
            const ssize_t n = ssl_ ? ::SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                                   : ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                if (!ssl_ && n < 0 && errno == EINTR) continue;
                fail(endpoint_, "connection lost while sending");
            }
            data.remove_prefix(static_cast<size_t>(n));
        }
    }

    // Some bytes of the answer; 0 at its end (the peer closed). Throws after the read timeout.
    size_t read_some(char* buffer, size_t size) {
        for (;;) {
            if (!(ssl_ && ::SSL_pending(ssl_) > 0) && !wait_for(fd_, POLLIN, timeouts_.read_ms))
                fail(endpoint_, "no answer within " + std::to_string(timeouts_.read_ms / 1000) + " s");
            const ssize_t n = ssl_ ? ::SSL_read(ssl_, buffer, static_cast<int>(size)) : ::recv(fd_, buffer, size, 0);
            if (n >= 0) return static_cast<size_t>(n);
            if (ssl_) {
                const int why = ::SSL_get_error(ssl_, static_cast<int>(n));
                if (why == SSL_ERROR_WANT_READ) continue;
                if (why == SSL_ERROR_ZERO_RETURN) return 0;
                fail(endpoint_, "TLS: " + tls_error());
            }
            if (errno != EINTR) fail(endpoint_, std::string("read: ") + std::strerror(errno));
        }
    }

  private:
    // Verifies the server against the CA given (or the system's) and the host's name or address.
    void start_tls() {
        context_ = ::SSL_CTX_new(::TLS_client_method());
        if (!context_) fail(endpoint_, "TLS: " + tls_error());
        const bool trusted = endpoint_.ca_cert.empty()
                                 ? ::SSL_CTX_set_default_verify_paths(context_) == 1
                                 : ::SSL_CTX_load_verify_locations(context_, endpoint_.ca_cert.c_str(), nullptr) == 1;
        if (!trusted) fail(endpoint_, "cannot read the CA certificate " + endpoint_.ca_cert);
        ::SSL_CTX_set_verify(context_, SSL_VERIFY_PEER, nullptr);
        ssl_ = ::SSL_new(context_);
        if (!ssl_) fail(endpoint_, "TLS: " + tls_error());
        in6_addr ip{};
        const bool literal = ::inet_pton(AF_INET, endpoint_.host.c_str(), &ip) == 1 ||
                             ::inet_pton(AF_INET6, endpoint_.host.c_str(), &ip) == 1;
        X509_VERIFY_PARAM* param = ::SSL_get0_param(ssl_);
        if (literal) {
            ::X509_VERIFY_PARAM_set1_ip_asc(param, endpoint_.host.c_str());
        } else {
            // SSL_set_tlsext_host_name, a macro with a C cast in it: the server name for SNI.
            ::SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                       const_cast<char*>(endpoint_.host.c_str()));
            ::SSL_set1_host(ssl_, endpoint_.host.c_str());
        }
        ::SSL_set_fd(ssl_, fd_);
        // The handshake runs on the blocking socket, bounded like the connect.
        if (!wait_for(fd_, POLLOUT, timeouts_.connect_ms) || ::SSL_connect(ssl_) != 1) {
            const long verified = ::SSL_get_verify_result(ssl_);
            fail(endpoint_, verified != X509_V_OK
                                ? std::string("certificate refused: ") + ::X509_verify_cert_error_string(verified)
                                : "TLS: " + tls_error());
        }
    }

    const Endpoint& endpoint_;
    HttpTimeouts timeouts_;
    int fd_ = -1;
    SSL_CTX* context_ = nullptr;
    SSL* ssl_ = nullptr;
};

// Reads an answer off a connection: the head, then the body as Content-Length, chunked encoding
// or everything up to the close says.
class AnswerReader {
  public:
    AnswerReader(const ByteSource& source, const Endpoint& endpoint) : source_(source), endpoint_(endpoint) {}

    int read_head() {
        size_t end;
        while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
            if (buffer_.size() > 64 * 1024) fail(endpoint_, "an answer's head over 64 KiB");
            if (!fill()) fail(endpoint_, "the connection closed before an answer");
        }
        const std::string head = buffer_.substr(0, end);
        buffer_.erase(0, end + 4);
        // "HTTP/1.1 200 OK": three digits after the version.
        const size_t space = head.find(' ');
        if (head.compare(0, 5, "HTTP/") != 0 || space == std::string::npos || space + 4 > head.size())
            fail(endpoint_, "an answer that is not HTTP");
        int status = 0;
        for (size_t i = space + 1; i < space + 4; ++i) {
            if (head[i] < '0' || head[i] > '9') fail(endpoint_, "an answer without a status");
            status = status * 10 + (head[i] - '0');
        }
        for (size_t line = head.find("\r\n"); line != std::string::npos;) {
            const size_t next = head.find("\r\n", line + 2);
            const std::string_view field(head.data() + line + 2,
                                         (next == std::string::npos ? head.size() : next) - line - 2);
            const size_t colon = field.find(':');
            if (colon != std::string_view::npos) {
                const std::string name = lower(field.substr(0, colon));
                std::string_view value = field.substr(colon + 1);
                while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
                if (name == "content-length") {
                    const std::string digits(value);
                    char* stop = nullptr;
                    remaining_ = std::strtoull(digits.c_str(), &stop, 10);
                    if (digits.empty() || *stop != '\0') fail(endpoint_, "a malformed Content-Length: " + digits);
                }
                if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) chunked_ = true;
            }
            line = next;
        }
        if (status < 100 || status > 599) fail(endpoint_, "an answer without a status");
        return status;
    }

    void read_body(const std::function<bool(const char*, size_t)>& piece) {
        if (chunked_) return read_chunks(piece);
        const bool bounded = remaining_ != kUnbounded;
        while (!bounded || remaining_ > 0) {
            if (buffer_.empty() && !fill()) {
                if (bounded) fail(endpoint_, "the connection closed in the middle of an answer");
                return;
            }
            const size_t n = bounded ? std::min<uint64_t>(remaining_, buffer_.size()) : buffer_.size();
            if (bounded) remaining_ -= n;
            if (!piece(buffer_.data(), n)) return;
            buffer_.erase(0, n);
        }
    }

  private:
    static constexpr uint64_t kUnbounded = ~uint64_t{0};

    bool fill() {
        char chunk[16 * 1024];
        const size_t n = source_(chunk, sizeof chunk);
        buffer_.append(chunk, n);
        return n > 0;
    }

    std::string read_line() {
        size_t end;
        while ((end = buffer_.find("\r\n")) == std::string::npos) {
            if (buffer_.size() > 4096) fail(endpoint_, "a chunk header over 4 KiB");
            if (!fill()) fail(endpoint_, "the connection closed in the middle of an answer");
        }
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
    }

    void read_chunks(const std::function<bool(const char*, size_t)>& piece) {
        for (;;) {
            const std::string header = read_line();
            char* end = nullptr;
            uint64_t size = std::strtoull(header.c_str(), &end, 16);
            if (end == header.c_str()) fail(endpoint_, "a malformed chunk header");
            if (size == 0) return;  // trailers, if any, are not read: the connection closes
            while (size > 0) {
                if (buffer_.empty() && !fill()) fail(endpoint_, "the connection closed in the middle of a chunk");
                const size_t n = std::min<uint64_t>(size, buffer_.size());
                if (!piece(buffer_.data(), n)) return;
                buffer_.erase(0, n);
                size -= n;
            }
            read_line();  // the CRLF after the chunk's data
        }
    }

    const ByteSource& source_;
    const Endpoint& endpoint_;
    std::string buffer_;
    uint64_t remaining_ = kUnbounded;
    bool chunked_ = false;
};

std::string head_of(const Endpoint& endpoint, const HttpRequest& request) {
    std::string head = request.method + " " + request.target + " HTTP/1.1\r\nHost: ";
    head += endpoint.unix_socket.empty() ? endpoint.host : "localhost";
    head += "\r\nConnection: close\r\nAccept: application/json\r\n";
    if (!request.bearer_token.empty()) head += "Authorization: Bearer " + request.bearer_token + "\r\n";
    if (!request.content_type.empty()) head += "Content-Type: " + request.content_type + "\r\n";
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT")
        head += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
    return head + "\r\n";
}

}  // namespace

Endpoint parse_url(const std::string& url) {
    Endpoint endpoint;
    std::string_view rest(url);
    if (rest.substr(0, 7) == "http://") {
        rest.remove_prefix(7);
        endpoint.port = 80;
    } else if (rest.substr(0, 8) == "https://") {
        rest.remove_prefix(8);
        endpoint.tls = true;
        endpoint.port = 443;
    } else {
        throw std::invalid_argument("host " + url + ": expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    size_t port_at = std::string_view::npos;
    if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
        const size_t close = rest.find(']');
        if (close == std::string_view::npos) throw std::invalid_argument("host " + url + ": an unclosed [");
        endpoint.host = std::string(rest.substr(1, close - 1));
        if (close + 1 < rest.size()) port_at = close + 1;
    } else {
        port_at = rest.find(':');
        endpoint.host = std::string(rest.substr(0, port_at));
    }
    if (port_at != std::string_view::npos) {
        if (rest[port_at] != ':') throw std::invalid_argument("host " + url + ": expected :PORT after the host");
        const std::string port(rest.substr(port_at + 1));
        char* end = nullptr;
        const unsigned long value = std::strtoul(port.c_str(), &end, 10);
        if (port.empty() || *end != '\0' || value == 0 || value > 65535)
            throw std::invalid_argument("host " + url + ": the port must be 1 to 65535");
        endpoint.port = static_cast<uint16_t>(value);
    }
    if (endpoint.host.empty() || endpoint.host.find('/') != std::string::npos)
        throw std::invalid_argument("host " + url + ": expected http://HOST[:PORT] or https://HOST[:PORT]");
    return endpoint;
}

std::string describe(const Endpoint& endpoint) {
    if (!endpoint.unix_socket.empty()) return endpoint.unix_socket;
    const bool v6 = endpoint.host.find(':') != std::string::npos;
    return std::string(endpoint.tls ? "https://" : "http://") + (v6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" +
           std::to_string(endpoint.port);
}

bool accepts_connections(const Endpoint& endpoint) {
    if (endpoint.unix_socket.empty()) return false;
    try {
        ::close(connect_unix(endpoint));
        return true;
    } catch (const std::runtime_error&) {
        return false;
    }
}

void exchange(const Endpoint& endpoint, const HttpRequest& request, const HttpTimeouts& timeouts,
              const std::function<void(int status)>& on_status,
              const std::function<bool(const char*, size_t)>& on_piece) {
    Connection connection(endpoint, timeouts);
    connection.write_all(head_of(endpoint, request));
    connection.write_all(request.body);
    read_answer([&](char* buffer, size_t size) { return connection.read_some(buffer, size); }, endpoint, on_status,
                on_piece);
}

void read_answer(const ByteSource& source, const Endpoint& endpoint, const std::function<void(int status)>& on_status,
                 const std::function<bool(const char*, size_t)>& on_piece) {
    AnswerReader reader(source, endpoint);
    on_status(reader.read_head());
    reader.read_body(on_piece);
}

HttpResponse exchange(const Endpoint& endpoint, const HttpRequest& request, const HttpTimeouts& timeouts) {
    HttpResponse response;
    exchange(
        endpoint, request, timeouts, [&](int status) { response.status = status; },
        [&](const char* data, size_t size) {
            response.body.append(data, size);
            return true;
        });
    return response;
}

}  // namespace kiln::cli
