// kiln's HTTP client against a one-shot server of the test's own that answers with canned bytes,
// written in the pieces a test chooses.
#include "http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kiln::cli {
namespace {

// Accepts one connection, reads the request (head and Content-Length body), then writes each of
// `pieces` in turn and closes. An empty piece list with `silent` keeps the connection open, unanswered.
class CannedServer {
  public:
    explicit CannedServer(std::vector<std::string> pieces, bool tcp = false, bool silent = false) {
        if (tcp) {
            listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            socklen_t length = sizeof address;
            EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
            EXPECT_EQ(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
            endpoint_.host = "127.0.0.1";
            endpoint_.port = ntohs(address.sin_port);
        } else {
            char directory[] = "/tmp/kiln-http-test-XXXXXX";
            directory_ = ::mkdtemp(directory);
            endpoint_.unix_socket = directory_ + "/api.sock";
            listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            sockaddr_un address{};
            address.sun_family = AF_UNIX;
            endpoint_.unix_socket.copy(address.sun_path, sizeof address.sun_path - 1);
            EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        }
        EXPECT_EQ(::listen(listener_, 1), 0);
        server_ = std::thread([this, pieces = std::move(pieces), silent] {
            const int fd = ::accept(listener_, nullptr, nullptr);
            if (fd < 0) return;
            read_request(fd);
            for (const auto& piece : pieces) {
                if (::send(fd, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;  // the client stopped reading
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }
            if (silent) {
                char byte;
                (void)::recv(fd, &byte, 1, 0);  // until the client gives up and closes
            }
            ::close(fd);
        });
    }
    ~CannedServer() {
        ::shutdown(listener_, SHUT_RDWR);
        server_.join();
        ::close(listener_);
        if (!directory_.empty()) std::filesystem::remove_all(directory_);
    }
    const Endpoint& endpoint() const { return endpoint_; }
    const std::string& request() const { return request_; }  // valid once the exchange returned

  private:
    void read_request(int fd) {
        char buffer[4096];
        size_t head_end = std::string::npos;
        while (head_end == std::string::npos) {
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) return;
            request_.append(buffer, static_cast<size_t>(n));
            head_end = request_.find("\r\n\r\n");
        }
        const size_t length_at = request_.find("Content-Length: ");
        const size_t length = length_at == std::string::npos ? 0 : std::stoul(request_.substr(length_at + 16));
        while (request_.size() < head_end + 4 + length) {
            const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
            if (n <= 0) return;
            request_.append(buffer, static_cast<size_t>(n));
        }
    }

    std::string directory_;
    Endpoint endpoint_;
    int listener_ = -1;
    std::string request_;
    std::thread server_;
};

std::string error_of(const Endpoint& endpoint, const HttpTimeouts& timeouts = {}) {
    try {
        exchange(endpoint, {.method = "GET", .target = "/v1/x"}, timeouts);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

TEST(HttpClient, SendsTheRequestAndReadsAContentLengthAnswer) {
    CannedServer server({"HTTP/1.1 201 Created\r\nContent-Length: 10\r\nContent-Type: application/json\r\n\r\n",
                         "{\"a\":", "\"b\"}\n"});
    const HttpResponse response = exchange(server.endpoint(), {.method = "POST",
                                                               .target = "/v1/instances?x=1",
                                                               .content_type = "application/json",
                                                               .body = "{\"image\":\"hello\"}",
                                                               .bearer_token = "secret"});
    EXPECT_EQ(response.status, 201);
    EXPECT_EQ(response.body, "{\"a\":\"b\"}\n");
    const std::string& request = server.request();
    EXPECT_EQ(request.rfind("POST /v1/instances?x=1 HTTP/1.1\r\n", 0), 0u) << request;
    EXPECT_NE(request.find("\r\nAuthorization: Bearer secret\r\n"), std::string::npos);
    EXPECT_NE(request.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
    EXPECT_NE(request.find("\r\nContent-Length: 17\r\n"), std::string::npos);
    EXPECT_EQ(request.substr(request.size() - 17), "{\"image\":\"hello\"}");
}

TEST(HttpClient, UndoesChunkedEncodingWhateverTheSplit) {
    const std::string answer =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n,\r\n"
        "A\r\n developer\r\n0\r\n\r\n";
    std::vector<std::string> bytes;
    for (char c : answer) bytes.emplace_back(1, c);  // one byte per write: every boundary split
    CannedServer server(bytes);
    EXPECT_EQ(exchange(server.endpoint(), {.target = "/logs"}).body, "hello, developer");
}

TEST(HttpClient, AStreamStopsWhenThePieceSaysSo) {
    CannedServer server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\none\r\n", "3\r\ntwo\r\n",
                         "5\r\nthree\r\n0\r\n\r\n"});
    std::string seen;
    int status = 0;
    exchange(
        server.endpoint(), {.target = "/logs?follow=true"}, {}, [&](int s) { status = s; },
        [&](const char* data, size_t size) {
            seen.append(data, size);
            return seen.size() < 6;
        });
    EXPECT_EQ(status, 200);
    EXPECT_EQ(seen, "onetwo");
}

TEST(HttpClient, AnAnswerWithoutLengthEndsWithTheConnection) {
    CannedServer server({"HTTP/1.0 404 Not Found\r\n\r\n", "{\"message\":\"no such instance\"}"});
    const HttpResponse response = exchange(server.endpoint(), {.target = "/v1/instances/x"});
    EXPECT_EQ(response.status, 404);
    EXPECT_EQ(response.body, "{\"message\":\"no such instance\"}");
}

TEST(HttpClient, BrokenAnswersAreNamed) {
    {
        CannedServer server({"SSH-2.0-OpenSSH\r\n\r\n"});
        EXPECT_NE(error_of(server.endpoint()).find("not HTTP"), std::string::npos);
    }
    {
        CannedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"});
        EXPECT_NE(error_of(server.endpoint()).find("closed in the middle of an answer"), std::string::npos);
    }
    {
        CannedServer server({"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"});
        EXPECT_NE(error_of(server.endpoint()).find("malformed chunk header"), std::string::npos);
    }
    {
        CannedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n"});
        EXPECT_NE(error_of(server.endpoint()).find("malformed Content-Length"), std::string::npos);
    }
    {
        CannedServer server({"HTTP/1.1 200 OK\r\n"});
        EXPECT_NE(error_of(server.endpoint()).find("closed before an answer"), std::string::npos);
    }
}

TEST(HttpClient, ASilentServerTimesOut) {
    CannedServer server({}, false, true);
    const std::string error = error_of(server.endpoint(), {.read_ms = 50});
    EXPECT_NE(error.find("no answer within"), std::string::npos) << error;
    EXPECT_NE(error.find(server.endpoint().unix_socket), std::string::npos) << error;
}

TEST(HttpClient, NoServerIsCannotConnectNamingTheSocket) {
    Endpoint nowhere;
    nowhere.unix_socket = "/tmp/kiln-http-test-nowhere.sock";
    EXPECT_EQ(error_of(nowhere), "kilnd at /tmp/kiln-http-test-nowhere.sock: cannot connect");
}

TEST(HttpClient, SpeaksTcpToo) {
    CannedServer server({"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}, true);
    EXPECT_EQ(exchange(server.endpoint(), {.target = "/v1/info"}).body, "ok");
    EXPECT_NE(server.request().find("\r\nHost: 127.0.0.1\r\n"), std::string::npos);
}

TEST(HttpClient, ParsesHostUrls) {
    const Endpoint plain = parse_url("http://10.0.0.2:7070");
    EXPECT_EQ(plain.host, "10.0.0.2");
    EXPECT_EQ(plain.port, 7070);
    EXPECT_FALSE(plain.tls);
    const Endpoint secure = parse_url("https://kiln.example/");
    EXPECT_EQ(secure.host, "kiln.example");
    EXPECT_EQ(secure.port, 443);
    EXPECT_TRUE(secure.tls);
    const Endpoint v6 = parse_url("http://[::1]:8080");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 8080);
    EXPECT_EQ(describe(v6), "http://[::1]:8080");
    for (const char* bad : {"10.0.0.2:7070", "ftp://x", "http://", "http://x:0", "http://x:99999", "http://x:7a",
                            "http://[::1", "http://x/path"})
        EXPECT_THROW(parse_url(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace kiln::cli
