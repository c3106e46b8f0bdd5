#include "control/control_socket.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "util/error.h"

namespace kiln::vmm {
namespace {
constexpr size_t kMaxRequest = 64 * 1024;  // a request line longer than this is refused
}

ControlSocket::ControlSocket(const std::string& path, EventLoop& loop, Handler handler)
    : path_(path), loop_(loop), handler_(std::move(handler)) {
    // Bound and listening under a name of its own, then renamed into place: a client that sees
    // `path` can connect at once. Bound at `path` itself, there would be a moment between bind
    // and listen in which a client finds the socket and is refused (kilnd resumes a prepared
    // restore the moment its socket appears).
    const std::string bound = path + ".new";
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.empty() || bound.size() >= sizeof(address.sun_path))
        throw VmmError("--control: socket path '" + path + "' is empty or too long (at most " +
                       std::to_string(sizeof(address.sun_path) - 5) + " characters)");
    std::memcpy(address.sun_path, bound.c_str(), bound.size() + 1);
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!listener_.valid()) throw system_error("--control: socket");
    ::unlink(bound.c_str());  // left by a run that ended between its bind and its rename
    if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
        throw system_error("--control: bind " + bound);
    if (::listen(listener_.get(), 16) != 0) {
        ::unlink(bound.c_str());
        throw system_error("--control: listen " + bound);
    }
    if (::rename(bound.c_str(), path.c_str()) != 0) {  // replaces a stale socket of a previous run
        ::unlink(bound.c_str());
        throw system_error("--control: rename " + bound + " to " + path);
    }
    loop_.add(listener_.get(), EPOLLIN, [this](uint32_t) { accept_clients(); });
}

ControlSocket::~ControlSocket() {
    loop_.remove(listener_.get());
    std::lock_guard lock(mutex_);
    for (auto& [fd, client] : clients_) loop_.remove(fd);
    clients_.clear();
    ::unlink(path_.c_str());
}

void ControlSocket::accept_clients() {
    for (;;) {
        const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        {
            std::lock_guard lock(mutex_);
            clients_[fd].fd.reset(fd);
            for (const auto& event : lasting_events_) send_line(fd, event);
        }
        loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t) { read_client(fd); });
    }
}

void ControlSocket::read_client(int fd) {
    char buffer[4096];
    std::string lines;
    bool closed = false;
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n > 0) {
            lines.append(buffer, static_cast<size_t>(n));
            continue;
        }
        closed = n == 0 || (errno != EAGAIN && errno != EINTR);
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    std::string input;
    {
        std::lock_guard lock(mutex_);
        auto it = clients_.find(fd);
        if (it == clients_.end()) return;
        it->second.input += lines;
        input.swap(it->second.input);
    }
    // Every complete line is a request, served even if the client already closed its side.
    size_t start = 0;
    for (size_t end; (end = input.find('\n', start)) != std::string::npos; start = end + 1) {
        const std::string line = input.substr(start, end - start);
        nlohmann::json response;
        try {
            const auto request = nlohmann::json::parse(line);
            if (!request.is_object())
                throw nlohmann::json::type_error::create(302, "a request is a JSON object", nullptr);
            response = handler_(request);
        } catch (const nlohmann::json::exception& e) {
            response = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
        } catch (const VmmError& e) {
            response = {{"ok", false}, {"error", e.what()}};
        }
        send_line(fd, response);
    }
    std::string rest = input.substr(start);
    if (rest.size() > kMaxRequest) {
        send_line(fd, {{"ok", false}, {"error", "request longer than 64 KiB"}});
        closed = true;
    }
    if (closed) {
        drop(fd);
        return;
    }
    std::lock_guard lock(mutex_);
    if (auto it = clients_.find(fd); it != clients_.end()) it->second.input = rest + it->second.input;
}

void ControlSocket::send_line(int fd, const nlohmann::json& message) {
    const std::string text = message.dump() + "\n";
    size_t done = 0;
    // Answers are small; a client that does not read them for long is not waited for.
    for (int spins = 0; done < text.size() && spins < 1000; ++spins) {
        const ssize_t n = ::send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return;
        }
    }
}

void ControlSocket::drop(int fd) {
    loop_.remove(fd);
    std::lock_guard lock(mutex_);
    clients_.erase(fd);
}

void ControlSocket::broadcast(const nlohmann::json& event, bool lasting) {
    std::lock_guard lock(mutex_);
    if (lasting) lasting_events_.push_back(event);
    for (auto& [fd, client] : clients_) send_line(fd, event);
}

}  // namespace kiln::vmm
