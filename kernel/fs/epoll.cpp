#include "fs/epoll.h"

#include "core/errno.h"
#include "fs/pipe.h"
#include "linux/process.h"

namespace kiln::fs {

Epoll::Interest* Epoll::find(int fd) {
    for (auto& i : interests_)
        if (i.fd == fd) return &i;
    return nullptr;
}

int64_t Epoll::add(int fd, RefPtr<File> file, uint32_t events, uint64_t data) {
    if (file.get() == this) return -EINVAL;
    if (find(fd)) return -EEXIST;
    if (!interests_.push_back({fd, move(file), events, data, ~0ull, true})) return -ENOMEM;
    notify_readiness_changed(*this);
    return 0;
}

int64_t Epoll::modify(int fd, uint32_t events, uint64_t data) {
    Interest* i = find(fd);
    if (i == nullptr) return -ENOENT;
    i->events = events;
    i->data = data;
    i->armed = true;
    i->reported_generation = ~0ull;  // report current readiness again, as Linux does
    notify_readiness_changed(*this);
    return 0;
}

int64_t Epoll::remove(int fd) {
    for (size_t i = 0; i < interests_.size(); ++i) {
        if (interests_[i].fd != fd) continue;
        interests_.erase(i);
        return 0;
    }
    return -ENOENT;
}

size_t Epoll::collect(EpollEvent* out, size_t max) {
    size_t count = 0;
    for (size_t k = 0; k < interests_.size() && count < max;) {
        Interest& i = interests_[k];
        // A descriptor closed (or reused) since it was added: Linux drops the interest then.
        if (linux::process().fds.get(i.fd) != i.file) {
            interests_.erase(k);
            continue;
        }
        ++k;
        if (!i.armed) continue;
        const uint32_t ready = i.file->poll() & (i.events | kEpollErr | kEpollHup);
        if (ready == 0) continue;
        const uint64_t generation = i.file->readiness_generation();
        if ((i.events & kEpollEt) && generation == i.reported_generation) continue;
        i.reported_generation = generation;
        if (i.events & kEpollOneshot) i.armed = false;
        if (out) out[count] = {ready, i.data};
        ++count;
    }
    return count;
}

uint32_t Epoll::poll() {
    for (auto& i : interests_) {
        if (!i.armed) continue;
        const uint32_t ready = i.file->poll() & (i.events | kEpollErr | kEpollHup);
        if (ready && (!(i.events & kEpollEt) || i.file->readiness_generation() != i.reported_generation))
            return kPollIn;
    }
    return 0;
}

RefPtr<File> create_epoll() { return RefPtr<File>(new Epoll); }

}  // namespace kiln::fs
