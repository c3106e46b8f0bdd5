// epoll: interest lists over the poll machinery (fs/pipe.h). Level-triggered entries report while
// ready; edge-triggered ones when a readiness change happened since they last reported.
#pragma once

#include "fs/file.h"

namespace kiln::fs {

struct EpollEvent {
    uint32_t events;
    uint64_t data;
} __attribute__((packed));
static_assert(sizeof(EpollEvent) == 12);

inline constexpr uint32_t kEpollIn = 0x001, kEpollOut = 0x004, kEpollErr = 0x008, kEpollHup = 0x010,
                          kEpollRdhup = 0x2000, kEpollExclusive = 1u << 28, kEpollWakeup = 1u << 29,
                          kEpollOneshot = 1u << 30, kEpollEt = 1u << 31;

class Epoll final : public File {
  public:
    Epoll() : File(kOpenReadWrite) {}
    int64_t read(const IoBuffer&, size_t) override { return -22; }
    int64_t write(const IoBuffer&, size_t) override { return -22; }
    uint32_t poll() override;
    uint32_t anonymous_mode() const override { return 0600; }
    Epoll* as_epoll() override { return this; }

    int64_t add(int fd, RefPtr<File> file, uint32_t events, uint64_t data);
    int64_t modify(int fd, uint32_t events, uint64_t data);
    int64_t remove(int fd);
    // Fills `out` with up to `max` ready events; returns how many.
    size_t collect(EpollEvent* out, size_t max);

  private:
    struct Interest {
        int fd;
        RefPtr<File> file;
        uint32_t events;
        uint64_t data;
        uint64_t reported_generation;
        bool armed;  // EPOLLONESHOT: off after one report, until modified
    };
    Interest* find(int fd);
    Vector<Interest> interests_;
};

}  // namespace kiln::fs
