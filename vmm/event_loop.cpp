#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/error.h"

namespace kiln::vmm {

EventLoop::EventLoop() {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_.valid()) throw system_error("epoll_create1");
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) throw system_error("eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) throw system_error("epoll_ctl");
}

EventLoop::~EventLoop() { stop(); }

void EventLoop::add(int fd, uint32_t events, Handler handler) {
    {
        std::lock_guard lock(mutex_);
        handlers_[fd] = std::make_shared<Handler>(std::move(handler));
    }
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) throw system_error("epoll_ctl add");
}

void EventLoop::modify(int fd, uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::remove(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    std::lock_guard lock(mutex_);
    handlers_.erase(fd);
}

void EventLoop::start() {
    thread_ = std::thread([this] { run(); });
}

void EventLoop::stop() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
    thread_.join();
}

void EventLoop::run() {
    epoll_event events[32];
    for (;;) {
        const int n = ::epoll_wait(epoll_.get(), events, 32, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        for (int i = 0; i < n; ++i) {
            const int fd = events[i].data.fd;
            std::shared_ptr<Handler> handler;
            {
                std::lock_guard lock(mutex_);
                if (stopping_) return;
                auto it = handlers_.find(fd);
                if (it == handlers_.end()) continue;
                handler = it->second;
            }
            (*handler)(events[i].events);
        }
    }
}

}  // namespace kiln::vmm
