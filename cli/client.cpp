#include "client.h"

#include <fcntl.h>
#include <httplib.h>
#include <sys/socket.h>
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

httplib::Client connect(const std::string& socket) {
    httplib::Client http(socket);
    http.set_address_family(AF_UNIX);
    http.set_connection_timeout(2);
    http.set_read_timeout(600);  // a stop may drain for minutes
    return http;
}

bool healthy(const std::string& socket) {
    auto http = connect(socket);
    auto result = http.Get("/v1/healthz");
    return result && result->status == 200;
}

}  // namespace

void set_remote(Remote remote) { remote_host = std::move(remote); }
const Remote& remote() { return remote_host; }

Client::Client() : socket_((fs::path(state_dir()) / "kilnd.sock").string()) {}

void Client::ensure_daemon() {
    if (checked_ || !remote_host.host.empty()) return;
    checked_ = true;
    if (healthy(socket_)) return;
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
        if (healthy(socket_)) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    throw std::runtime_error("kilnd did not start for " + state_dir() + " (see " + log + ")");
}

httplib::Client Client::http() {
    ensure_daemon();
    if (remote_host.host.empty()) return connect(socket_);
    httplib::Client http(remote_host.host);
    if (!remote_host.ca_cert.empty()) http.set_ca_cert_path(remote_host.ca_cert.c_str());
    http.enable_server_certificate_verification(true);  // an https:// kilnd must prove who it is
    http.set_connection_timeout(5);
    http.set_read_timeout(600);
    if (!remote_host.token.empty()) http.set_bearer_token_auth(remote_host.token.c_str());
    return http;
}

void Client::stream(const std::string& path, const std::function<bool(const char*, size_t)>& piece) {
    httplib::Client connection = http();
    connection.set_read_timeout(24 * 3600);  // a quiet instance may say nothing for long
    std::string refusal;
    int status = 0;
    const auto result = connection.Get(
        path.c_str(),
        [&](const httplib::Response& response) {
            status = response.status;
            return true;
        },
        [&](const char* data, size_t size) {
            if (status >= 400) {
                refusal.append(data, size);
                return true;
            }
            return piece(data, size);
        });
    if (status >= 400) {
        const auto envelope = nlohmann::json::parse(refusal, nullptr, false);
        throw std::runtime_error(envelope.is_object() ? envelope.value("message", "error") : refusal);
    }
    if (!result && result.error() != httplib::Error::Canceled)
        throw std::runtime_error("kilnd: " + httplib::to_string(result.error()));
}

nlohmann::json Client::call(const std::string& method, const std::string& path, const nlohmann::json* body) {
    httplib::Client http = this->http();
    const bool remote = !remote_host.host.empty();
    const std::string where = remote ? remote_host.host : socket_;
    const std::string text = body ? body->dump() : "";
    httplib::Result result = method == "GET"    ? http.Get(path.c_str())
                             : method == "POST" ? http.Post(path.c_str(), text, "application/json")
                             : method == "PUT"  ? http.Put(path.c_str(), text, "application/json")
                                                : http.Delete(path.c_str());
    return data_of(result, where);
}

nlohmann::json Client::post_parts(const std::string& path, const std::vector<Part>& parts) {
    httplib::Client http = this->http();
    httplib::MultipartFormDataItems items;
    for (const auto& part : parts)
        items.push_back({part.name, part.content, part.filename, "application/octet-stream"});
    auto result = http.Post(path.c_str(), items);
    return data_of(result, remote_host.host.empty() ? socket_ : remote_host.host);
}

// The envelope's data of an answer, or std::runtime_error with kilnd's message.
nlohmann::json Client::data_of(httplib::Result& result, const std::string& where) {
    if (!result) {
        const bool refused = result.error() == httplib::Error::Connection;
        throw std::runtime_error("kilnd at " + where + ": " +
                                 (refused ? std::string("cannot connect") : httplib::to_string(result.error())));
    }
    const auto envelope = nlohmann::json::parse(result->body, nullptr, false);
    if (envelope.is_discarded() || !envelope.is_object())
        throw std::runtime_error("kilnd answered " + std::to_string(result->status) + " without a JSON envelope");
    if (result->status >= 400) throw std::runtime_error(envelope.value("message", "error"));
    return envelope["data"];
}

nlohmann::json Client::get(const std::string& path) { return call("GET", path, nullptr); }
nlohmann::json Client::post(const std::string& path, const nlohmann::json& body) { return call("POST", path, &body); }
nlohmann::json Client::put(const std::string& path, const nlohmann::json& body) { return call("PUT", path, &body); }
nlohmann::json Client::del(const std::string& path) { return call("DELETE", path, nullptr); }

}  // namespace kiln::cli
