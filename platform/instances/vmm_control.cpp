#include "instances/vmm_control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace kiln::instances {

namespace {

struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
};

// A connected socket to `path`, or -1.
int connect_to(const std::string& path) {
    sockaddr_un address{};
    if (path.size() >= sizeof(address.sun_path)) return -1;
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

bool wait_ready(const std::string& path, std::chrono::milliseconds timeout, const std::function<bool()>& keep_waiting) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int fd;
    for (int tries = 0; (fd = connect_to(path)) < 0; ++tries) {
        if (std::chrono::steady_clock::now() > deadline || (tries % 20 == 0 && !keep_waiting())) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));  // kiln-vmm is starting
    }
    Closer closer{fd};
    std::string input;
    for (;;) {
        for (size_t end; (end = input.find('\n')) != std::string::npos; input.erase(0, end + 1)) {
            const auto message = nlohmann::json::parse(input.substr(0, end), nullptr, false);
            if (!message.is_object()) continue;
            const std::string event = message.value("event", "");
            if (event == "ready") return true;
            if (event == "exited") return false;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !keep_waiting()) return false;
        pollfd p{fd, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 50)));
        if (ready < 0) return false;
        if (ready == 0) continue;
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) return false;
        input.append(buffer, static_cast<size_t>(n));
    }
}

bool control_send(const std::string& path, const nlohmann::json& request) {
    const int fd = connect_to(path);
    if (fd < 0) return false;
    Closer closer{fd};
    const std::string line = request.dump() + "\n";
    return ::send(fd, line.data(), line.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
}

bool resume_through_fifo(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    Closer closer{fd};
    const char byte = 'r';
    return ::write(fd, &byte, 1) == 1;
}

std::optional<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                              std::chrono::milliseconds timeout) {
    const int fd = connect_to(path);
    if (fd < 0) return std::nullopt;
    Closer closer{fd};
    const std::string line = request.dump() + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string input;
    for (;;) {
        for (size_t end; (end = input.find('\n')) != std::string::npos; input.erase(0, end + 1)) {
            auto message = nlohmann::json::parse(input.substr(0, end), nullptr, false);
            if (message.is_object() && !message.contains("event")) return message;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
        if (n <= 0) return std::nullopt;
        input.append(buffer, static_cast<size_t>(n));
    }
}

}  // namespace kiln::instances
