// The device thread: one epoll loop for everything that is not a vCPU (virtio queue kicks through
// ioeventfds, tap devices, later the control socket).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "host/unique_fd.h"

namespace kiln::vmm {

class EventLoop {
  public:
    using Handler = std::function<void(uint32_t events)>;

    EventLoop();
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Watches `fd` for `events` (EPOLLIN...). Handlers run on the loop's thread.
    void add(int fd, uint32_t events, Handler handler);
    void modify(int fd, uint32_t events);
    void remove(int fd);

    void start();
    void stop();

  private:
    void run();

    UniqueFd epoll_;
    UniqueFd wake_;  // eventfd: makes the loop notice stop()
    std::mutex mutex_;
    std::map<int, std::shared_ptr<Handler>> handlers_;
    std::thread thread_;
    bool stopping_ = false;
};

}  // namespace kiln::vmm
