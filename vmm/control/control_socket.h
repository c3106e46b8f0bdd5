// kiln-vmm's control socket (--control PATH): a unix stream socket taking one JSON object per
// line and answering one per line, plus events pushed to every connected client. kilnd is its
// client. Requests are handled on the device thread (EventLoop); events may come from any thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "event_loop.h"
#include "host/unique_fd.h"

namespace kiln::vmm {

class ControlSocket {
  public:
    using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

    // Throws VmmError if the socket cannot be created (path in use, too long...).
    ControlSocket(const std::string& path, EventLoop& loop, Handler handler);
    ~ControlSocket();

    // Sends `event` to every client. A lasting event (a listener that is ready) is also sent to
    // every client that connects later, so a client never misses what happened before it came.
    // Safe from any thread.
    void broadcast(const nlohmann::json& event, bool lasting = false);

  private:
    struct Client {
        UniqueFd fd;
        std::string input;
    };
    void accept_clients();
    void read_client(int fd);
    void send_line(int fd, const nlohmann::json& message);
    void drop(int fd);

    std::string path_;
    EventLoop& loop_;
    Handler handler_;
    UniqueFd listener_;
    std::mutex mutex_;
    std::map<int, Client> clients_;
    std::vector<nlohmann::json> lasting_events_;
};

}  // namespace kiln::vmm
