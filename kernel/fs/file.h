// Open file descriptions and the descriptor table.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fs/node.h"
#include "lib/ref_ptr.h"
#include "lib/vector.h"
#include "sched/thread.h"

namespace kiln::fs {

// Linux open(2) flags and poll(2) events that the file layer itself interprets.
inline constexpr uint32_t kOpenAccessMode = 03;
inline constexpr uint32_t kOpenReadOnly = 0;
inline constexpr uint32_t kOpenWriteOnly = 1;
inline constexpr uint32_t kOpenReadWrite = 2;
inline constexpr uint32_t kOpenCreate = 0100;
inline constexpr uint32_t kOpenExclusive = 0200;
inline constexpr uint32_t kOpenTruncate = 01000;
inline constexpr uint32_t kOpenAppend = 02000;
inline constexpr uint32_t kOpenNonBlock = 04000;
inline constexpr uint32_t kOpenDirectory = 0200000;
inline constexpr uint32_t kOpenNoFollow = 0400000;
inline constexpr uint32_t kOpenCloexec = 02000000;
inline constexpr uint32_t kOpenPath = 010000000;

inline constexpr uint32_t kPollIn = 0x001;
inline constexpr uint32_t kPollPri = 0x002;
inline constexpr uint32_t kPollOut = 0x004;
inline constexpr uint32_t kPollErr = 0x008;
inline constexpr uint32_t kPollHup = 0x010;
inline constexpr uint32_t kPollNval = 0x020;

class Epoll;
}  // namespace kiln::fs

namespace kiln::net {
class Socket;
}  // namespace kiln::net

namespace kiln::fs {

// An open file description: what a descriptor refers to. Shared by dup'ed descriptors.
class File : public RefCounted {
  public:
    explicit File(uint32_t flags) : flags_(flags) {}

    virtual int64_t read(const IoBuffer& buffer, size_t size) = 0;
    virtual int64_t write(const IoBuffer& buffer, size_t size) = 0;
    virtual int64_t pread(uint64_t, const IoBuffer&, size_t) { return -29; /* ESPIPE */ }
    virtual int64_t pwrite(uint64_t, const IoBuffer&, size_t) { return -29; }
    virtual int64_t seek(int64_t, int) { return -29; }
    virtual int64_t ioctl(uint64_t, uint64_t) { return -25; /* ENOTTY */ }
    // Ready events (kPollIn...) right now.
    virtual uint32_t poll() { return kPollIn | kPollOut; }
    // Where pollers wait for a change; null if readiness never changes.
    virtual sched::WaitQueue* wait_queue() { return nullptr; }
    // The node for fstat; null for pipes and eventfds without one.
    virtual RefPtr<Node> node() { return {}; }
    // st_mode type bits for objects without a node.
    virtual uint32_t anonymous_mode() const { return 0; }
    // Directories.
    virtual int64_t read_directory(const IoBuffer&, size_t) { return -20; /* ENOTDIR */ }
    // The kernel has no RTTI: what an epoll_ctl/epoll_wait target must be.
    virtual Epoll* as_epoll() { return nullptr; }
    virtual net::Socket* as_socket() { return nullptr; }

    // Bumped on every readiness change (fs/pipe.h notify_readiness_changed): how edge-triggered
    // epoll tells a new event from one it already reported.
    uint64_t readiness_generation() const { return readiness_generation_; }
    void readiness_changed() { ++readiness_generation_; }

    uint32_t flags() const { return flags_; }
    void set_status_flags(uint32_t flags) {
        flags_ = (flags_ & ~(kOpenAppend | kOpenNonBlock)) | (flags & (kOpenAppend | kOpenNonBlock));
    }
    bool nonblocking() const { return (flags_ & kOpenNonBlock) != 0; }
    bool readable() const { return (flags_ & kOpenAccessMode) != kOpenWriteOnly; }
    bool writable() const { return (flags_ & kOpenAccessMode) != kOpenReadOnly; }

  private:
    uint32_t flags_;
    uint64_t readiness_generation_ = 0;
};

// A file, directory or device in the tree.
class NodeFile final : public File {
  public:
    NodeFile(RefPtr<Node> node, uint32_t flags) : File(flags), node_(move(node)) {}
    int64_t read(const IoBuffer& buffer, size_t size) override;
    int64_t write(const IoBuffer& buffer, size_t size) override;
    int64_t pread(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    int64_t pwrite(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    int64_t seek(int64_t offset, int whence) override;
    int64_t ioctl(uint64_t request, uint64_t argument) override { return node_->ioctl(request, argument); }
    RefPtr<Node> node() override { return node_; }
    int64_t read_directory(const IoBuffer& buffer, size_t size) override;

  private:
    RefPtr<Node> node_;
    uint64_t offset_ = 0;
};

class FdTable {
  public:
    static constexpr int kMaxFds = 1024;

    // The lowest free descriptor >= `minimum`, or -EMFILE.
    int allocate(RefPtr<File> file, bool cloexec, int minimum = 0);
    int64_t install(int fd, RefPtr<File> file, bool cloexec);  // dup2 semantics
    RefPtr<File> get(int fd) const;
    int64_t close(int fd);
    bool cloexec(int fd) const;
    int64_t set_cloexec(int fd, bool on);
    // fork: the same open files under the same numbers. False if memory ran out.
    [[nodiscard]] bool copy_from(const FdTable& other);
    // execve: closes the descriptors marked close-on-exec.
    void close_on_exec();
    void close_all() { slots_ = {}; }

  private:
    struct Slot {
        RefPtr<File> file;
        bool cloexec = false;
    };
    Vector<Slot> slots_;
};

}  // namespace kiln::fs
