#include "client.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "paths.h"

namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

Remote remote_host;

bool healthy(const Endpoint& local) {
    try {
        return exchange(local, {.method = "GET", .target = "/v1/healthz"}).status == 200;
    } catch (const std::runtime_error&) {
        return false;  // no kilnd there (yet)
    }
}

// The envelope's data of an answer, or std::runtime_error with kilnd's message.
nlohmann::json data_of(const HttpResponse& response) {
    const auto envelope = nlohmann::json::parse(response.body, nullptr, false);
    if (envelope.is_discarded() || !envelope.is_object())
        throw std::runtime_error("kilnd answered " + std::to_string(response.status) + " without a JSON envelope");
    if (response.status >= 400) throw std::runtime_error(envelope.value("message", "error"));
    return envelope["data"];
}

}  // namespace

void set_remote(Remote remote) { remote_host = std::move(remote); }
const Remote& remote() { return remote_host; }

Client::Client() {
    if (remote_host.host.empty()) {
        endpoint_.unix_socket = (fs::path(state_dir()) / "kilnd.sock").string();
    } else {
        endpoint_ = parse_url(remote_host.host);
        endpoint_.ca_cert = remote_host.ca_cert;
    }
}

void Client::ensure_daemon() {
    if (checked_ || !remote_host.host.empty()) return;
    checked_ = true;
    // A socket that takes a connection has a kilnd behind it (it listens once it can serve): a
    // connect costs tens of microseconds, a health request a round trip through kilnd's threads.
    if (accepts_connections(endpoint_)) return;
    std::error_code error;
    const fs::path kilnd = fs::read_symlink("/proc/self/exe", error).parent_path() / "kilnd";
    fs::create_directories(state_dir(), error);
    const std::string log = (fs::path(state_dir()) / "kilnd.log").string();
    const pid_t pid = ::fork();
    if (pid == 0) {
        // The daemon: its own session, no terminal, its messages in STATE/kilnd.log.
        ::setsid();
        const int null = ::open("/dev/null", O_RDONLY);
        const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        ::dup2(null, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        if (::fork() == 0) {  // a grandchild, so that kiln need not wait for it
            ::execl(kilnd.c_str(), "kilnd", nullptr);
            ::_exit(127);
        }
        ::_exit(0);
    }
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        if (healthy(endpoint_)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    throw std::runtime_error("kilnd did not start for " + state_dir() + " (see " + log + ")");
}

const Endpoint& Client::endpoint() {
    ensure_daemon();
    return endpoint_;
}

HttpRequest Client::request(const std::string& method, const std::string& path) const {
    return {.method = method, .target = path, .bearer_token = remote_host.token};
}

void Client::stream(const std::string& path, const std::function<bool(const char*, size_t)>& piece) {
    const HttpTimeouts quiet{.read_ms = 24 * 3600 * 1000};  // a quiet instance may say nothing for long
    std::string refusal;
    int status = 0;
    exchange(
        endpoint(), request("GET", path), quiet, [&](int answered) { status = answered; },
        [&](const char* data, size_t size) {
            if (status < 400) return piece(data, size);
            refusal.append(data, size);
            return true;
        });
    if (status >= 400) {
        const auto envelope = nlohmann::json::parse(refusal, nullptr, false);
        throw std::runtime_error(envelope.is_object() ? envelope.value("message", "error") : refusal);
    }
}

nlohmann::json Client::call(HttpRequest request) { return data_of(exchange(endpoint(), request)); }

nlohmann::json Client::post_parts(const std::string& path, const std::vector<Part>& parts) {
    // multipart/form-data (RFC 7578); the boundary only has to be absent from the parts.
    std::string boundary = "kiln-boundary-" + std::to_string(::getpid());
    for (bool clash = true; clash;) {
        clash = false;
        for (const auto& part : parts) clash = clash || part.content.find(boundary) != std::string::npos;
        if (clash) boundary += "x";
    }
    HttpRequest post = request("POST", path);
    post.content_type = "multipart/form-data; boundary=" + boundary;
    for (const auto& part : parts) {
        post.body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + part.name + "\"";
        if (!part.filename.empty()) post.body += "; filename=\"" + part.filename + "\"";
        post.body += "\r\nContent-Type: application/octet-stream\r\n\r\n";
        post.body += part.content;
        post.body += "\r\n";
    }
    post.body += "--" + boundary + "--\r\n";
    return call(std::move(post));
}

nlohmann::json Client::get(const std::string& path) { return call(request("GET", path)); }

nlohmann::json Client::post(const std::string& path, const nlohmann::json& body) {
    HttpRequest post = request("POST", path);
    post.content_type = "application/json";
    post.body = body.dump();
    return call(std::move(post));
}

nlohmann::json Client::put(const std::string& path, const nlohmann::json& body) {
    HttpRequest put = request("PUT", path);
    put.content_type = "application/json";
    put.body = body.dump();
    return call(std::move(put));
}

nlohmann::json Client::del(const std::string& path) { return call(request("DELETE", path)); }

}  // namespace kiln::cli
