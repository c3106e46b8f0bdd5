#include "fs/pipe.h"

#include "core/errno.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "mm/heap.h"

namespace kiln::fs {
namespace {

constexpr size_t kPipeCapacity = 65536;

// Blocks the caller until `ready()` holds or the file is non-blocking (EAGAIN) or a signal comes
// (restart or EINTR).
template <typename Ready>
int64_t wait_until(File& file, sched::WaitQueue& queue, Ready ready) {
    while (!ready()) {
        if (file.nonblocking()) return -EAGAIN;
        if (sched::wait(queue, 0, true) == sched::WakeReason::kInterrupted) return linux::kErestartsys;
    }
    return 0;
}

struct Pipe : RefCounted {
    uint8_t* buffer = static_cast<uint8_t*>(heap::allocate(kPipeCapacity));
    size_t head = 0;  // next byte to read
    size_t size = 0;
    int readers = 0;
    int writers = 0;
    File* read_end = nullptr;  // for readiness notifications; cleared when the end closes
    File* write_end = nullptr;
    void notify() {
        if (read_end) notify_readiness_changed(*read_end);
        if (write_end) notify_readiness_changed(*write_end);
    }
    sched::WaitQueue readable;
    sched::WaitQueue writable;
    ~Pipe() override { heap::free(buffer); }
};

class PipeEnd final : public File {
  public:
    PipeEnd(RefPtr<Pipe> pipe, bool read_end, uint32_t flags)
        : File((flags & ~kOpenAccessMode) | (read_end ? kOpenReadOnly : kOpenWriteOnly)), pipe_(move(pipe)),
          read_end_(read_end) {
        (read_end_ ? pipe_->readers : pipe_->writers)++;
        (read_end_ ? pipe_->read_end : pipe_->write_end) = this;
    }
    ~PipeEnd() override {
        (read_end_ ? pipe_->readers : pipe_->writers)--;
        (read_end_ ? pipe_->read_end : pipe_->write_end) = nullptr;
        sched::wake(read_end_ ? pipe_->writable : pipe_->readable);
        pipe_->notify();
    }

    int64_t read(const IoBuffer& buffer, size_t size) override {
        Pipe& p = *pipe_;
        if (size == 0) return 0;
        if (int64_t r = wait_until(*this, p.readable, [&p] { return p.size > 0 || p.writers == 0; }); r < 0) return r;
        size_t done = 0;
        while (done < size && p.size > 0) {
            const size_t run = min(min(size - done, p.size), kPipeCapacity - p.head);
            if (buffer.copy_out(done, p.buffer + p.head, run) != 0)
                return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
            p.head = (p.head + run) % kPipeCapacity;
            p.size -= run;
            done += run;
        }
        if (done > 0) {
            sched::wake(p.writable);
            p.notify();
        }
        return static_cast<int64_t>(done);
    }

    int64_t write(const IoBuffer& buffer, size_t size) override {
        Pipe& p = *pipe_;
        size_t done = 0;
        while (done < size) {
            if (p.readers == 0) {
                linux::send_signal(*linux::current_info(), linux::kSigPipe);
                return done > 0 ? static_cast<int64_t>(done) : -EPIPE;
            }
            int64_t r = wait_until(*this, p.writable, [&p] { return p.size < kPipeCapacity || p.readers == 0; });
            if (r < 0) return done > 0 ? static_cast<int64_t>(done) : r;
            if (p.readers == 0) continue;
            const size_t tail = (p.head + p.size) % kPipeCapacity;
            const size_t run = min(min(size - done, kPipeCapacity - p.size), kPipeCapacity - tail);
            if (buffer.copy_in(done, p.buffer + tail, run) != 0) return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
            p.size += run;
            done += run;
            sched::wake(p.readable);
            p.notify();
        }
        return static_cast<int64_t>(done);
    }

    uint32_t poll() override {
        const Pipe& p = *pipe_;
        if (read_end_) return (p.size > 0 ? kPollIn : 0) | (p.writers == 0 ? kPollHup : 0);
        return (p.size < kPipeCapacity ? kPollOut : 0) | (p.readers == 0 ? kPollErr : 0);
    }
    uint32_t anonymous_mode() const override { return static_cast<uint32_t>(Type::kFifo) | 0600; }
    int64_t ioctl(uint64_t request, uint64_t argument) override;

  private:
    RefPtr<Pipe> pipe_;
    bool read_end_;
};

int64_t PipeEnd::ioctl(uint64_t request, uint64_t argument) {
    constexpr uint64_t kFionread = 0x541b;
    if (request != kFionread) return -ENOTTY;
    const int available = static_cast<int>(pipe_->size);
    return IoBuffer::user(argument).copy_out(0, &available, sizeof(available));
}

class EventFd final : public File {
  public:
    EventFd(uint64_t initial, uint32_t flags, bool semaphore)
        : File((flags & kOpenNonBlock) | kOpenReadWrite), counter_(initial), semaphore_(semaphore) {}

    int64_t read(const IoBuffer& buffer, size_t size) override {
        if (size < 8) return -EINVAL;
        if (int64_t r = wait_until(*this, changed_, [this] { return counter_ > 0; }); r < 0) return r;
        const uint64_t value = semaphore_ ? 1 : counter_;
        if (buffer.copy_out(0, &value, 8) != 0) return -EFAULT;
        counter_ -= value;
        sched::wake(changed_);
        notify_readiness_changed(*this);
        return 8;
    }

    int64_t write(const IoBuffer& buffer, size_t size) override {
        if (size < 8) return -EINVAL;
        uint64_t value;
        if (buffer.copy_in(0, &value, 8) != 0) return -EFAULT;
        if (value == ~0ull) return -EINVAL;
        if (int64_t r = wait_until(*this, changed_, [this, value] { return counter_ < ~0ull - value; }); r < 0)
            return r;
        counter_ += value;
        sched::wake(changed_);
        notify_readiness_changed(*this);
        return 8;
    }

    uint32_t poll() override { return (counter_ > 0 ? kPollIn : 0) | (counter_ < ~0ull - 1 ? kPollOut : 0); }
    uint32_t anonymous_mode() const override { return 0600; }

  private:
    uint64_t counter_;
    bool semaphore_;
    sched::WaitQueue changed_;
};

}  // namespace

sched::WaitQueue& poll_waiters() {
    static sched::WaitQueue queue;
    return queue;
}

void notify_readiness_changed(File& file) {
    file.readiness_changed();
    sched::wake(poll_waiters());
}

int64_t create_pipe(uint32_t flags, RefPtr<File>& read_end, RefPtr<File>& write_end) {
    RefPtr<Pipe> pipe(new Pipe);
    if (pipe->buffer == nullptr) return -ENOMEM;
    read_end = RefPtr<File>(new PipeEnd(pipe, true, flags));
    write_end = RefPtr<File>(new PipeEnd(pipe, false, flags));
    return 0;
}

RefPtr<File> create_eventfd(uint64_t initial, uint32_t flags) {
    constexpr uint32_t kSemaphore = 1;
    return RefPtr<File>(new EventFd(initial, flags, flags & kSemaphore));
}

}  // namespace kiln::fs
