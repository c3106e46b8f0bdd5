// Socket system calls: AF_INET stream and datagram sockets over the Kiln network stack (net/).
#include "core/errno.h"
#include "fs/file.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "linux/syscall.h"
#include "linux/user_memory.h"
#include "net/bytes.h"
#include "net/socket.h"

namespace kiln::linux {
namespace {

constexpr int kAfInet = 2;
constexpr uint64_t kSockNonBlock = 04000, kSockCloexec = 02000000, kSockTypeMask = 0xf;

// The socket an fd names, with its file held open for the call; `error` is -EBADF or -ENOTSOCK.
struct SocketRef {
    RefPtr<fs::File> file;
    net::Socket* socket = nullptr;
    int64_t error = 0;
    explicit operator bool() const { return socket != nullptr; }
    net::Socket* operator->() const { return socket; }
};

SocketRef socket_of(uint64_t fd) {
    SocketRef ref;
    ref.file = process().fds.get(static_cast<int>(fd));
    if (!ref.file) {
        ref.error = -EBADF;
        return ref;
    }
    ref.socket = ref.file->as_socket();
    if (ref.socket == nullptr) ref.error = -ENOTSOCK;
    return ref;
}

int64_t read_address(uint64_t user, uint64_t length, net::SocketAddress& out) {
    if (length < 16) return -EINVAL;
    uint8_t a[16];
    if (copy_from_user(a, user, 16) != 0) return -EFAULT;
    uint16_t family;
    memcpy(&family, a, 2);
    if (family != kAfInet) return -EAFNOSUPPORT;
    out.port = net::load16(a + 2);
    out.ip = net::load32(a + 4);
    return 0;
}

// Writes a sockaddr_in and its length (socklen_t in/out at `length_user`).
int64_t write_address(uint64_t user, uint64_t length_user, const net::SocketAddress& a) {
    if (user == 0) return 0;
    uint32_t room;
    if (get_user(room, length_user) != 0) return -EFAULT;
    if (static_cast<int32_t>(room) < 0) return -EINVAL;
    uint8_t bytes[16] = {};
    const uint16_t family = kAfInet;
    memcpy(bytes, &family, 2);
    net::store16(bytes + 2, a.port);
    net::store32(bytes + 4, a.ip);
    if (copy_to_user(user, bytes, min<uint32_t>(room, 16)) != 0) return -EFAULT;
    return put_user(length_user, uint32_t{16});
}

int64_t sys_socket(SyscallArgs& a) {
    const int domain = static_cast<int>(a.a[0]);
    if (domain != kAfInet) return -EAFNOSUPPORT;  // AF_INET6, AF_UNIX, AF_NETLINK: not yet
    const uint64_t type = a.a[1];
    RefPtr<fs::File> file;
    const uint32_t flags = (type & kSockNonBlock) ? fs::kOpenNonBlock : 0;
    if (int64_t r = net::create_socket(static_cast<int>(type & kSockTypeMask), static_cast<int>(a.a[2]), flags, file);
        r < 0)
        return r;
    return process().fds.allocate(file, type & kSockCloexec);
}

int64_t sys_bind(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress address;
    if (int64_t r = read_address(a.a[1], a.a[2], address); r < 0) return r;
    return s->bind(address);
}

int64_t sys_listen(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    return s ? s->listen(static_cast<int>(a.a[1])) : s.error;
}

int64_t accept_with(SyscallArgs& a, uint64_t flags) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    if (flags & ~(kSockNonBlock | kSockCloexec)) return -EINVAL;
    RefPtr<fs::File> accepted;
    net::SocketAddress peer;
    if (int64_t r = s->accept(accepted, peer, (flags & kSockNonBlock) ? fs::kOpenNonBlock : 0); r < 0) return r;
    if (int64_t r = write_address(a.a[1], a.a[2], peer); r < 0) return r;
    return process().fds.allocate(accepted, flags & kSockCloexec);
}

int64_t sys_accept(SyscallArgs& a) { return accept_with(a, 0); }
int64_t sys_accept4(SyscallArgs& a) { return accept_with(a, a.a[3]); }

int64_t sys_connect(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress address;
    if (int64_t r = read_address(a.a[1], a.a[2], address); r < 0) return r;
    return s->connect(address);
}

int64_t sys_getsockname(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress address;
    if (int64_t r = s->local_address(address); r < 0) return r;
    return write_address(a.a[1], a.a[2], address);
}

int64_t sys_getpeername(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress address;
    if (int64_t r = s->peer_address(address); r < 0) return r;
    return write_address(a.a[1], a.a[2], address);
}

int64_t sys_setsockopt(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    uint8_t value[64] = {};
    const size_t length = min<uint64_t>(a.a[4], sizeof(value));
    if (length && copy_from_user(value, a.a[3], length) != 0) return -EFAULT;
    return s->set_option(static_cast<int>(a.a[1]), static_cast<int>(a.a[2]), value, length);
}

int64_t sys_getsockopt(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    uint32_t room;
    if (get_user(room, a.a[4]) != 0) return -EFAULT;
    uint8_t value[64] = {};
    size_t length = min<uint32_t>(room, sizeof(value));
    if (int64_t r = s->get_option(static_cast<int>(a.a[1]), static_cast<int>(a.a[2]), value, length); r < 0) return r;
    if (copy_to_user(a.a[3], value, length) != 0) return -EFAULT;
    return put_user(a.a[4], static_cast<uint32_t>(length));
}

int64_t sys_shutdown(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    if (a.a[1] > 2) return -EINVAL;
    return s->shutdown(static_cast<int>(a.a[1]));
}

int64_t sys_sendto(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress to;
    if (a.a[4] != 0)
        if (int64_t r = read_address(a.a[4], a.a[5], to); r < 0) return r;
    return s->send_to(fs::IoBuffer::user(a.a[1]), a.a[2], static_cast<int>(a.a[3]), a.a[4] ? &to : nullptr);
}

int64_t sys_recvfrom(SyscallArgs& a) {
    const SocketRef s = socket_of(a.a[0]);
    if (!s) return s.error;
    net::SocketAddress from;
    const int64_t n = s->receive_from(fs::IoBuffer::user(a.a[1]), a.a[2], static_cast<int>(a.a[3]), &from);
    if (n >= 0 && a.a[4] != 0)
        if (int64_t r = write_address(a.a[4], a.a[5], from); r < 0) return r;
    return n;
}

// struct msghdr: name, namelen, iov, iovlen, control, controllen, flags.
struct MessageHeader {
    uint64_t name;
    uint32_t name_length;
    uint32_t pad;
    uint64_t iov;
    uint64_t iov_count;
    uint64_t control;
    uint64_t control_length;
    int32_t flags;
    int32_t pad2;
};

int64_t message_io(uint64_t fd, uint64_t header, int flags, bool send) {
    const SocketRef s = socket_of(fd);
    if (!s) return s.error;
    MessageHeader m;
    if (copy_from_user(&m, header, sizeof(m)) != 0) return -EFAULT;
    if (m.iov_count > 1024) return -EMSGSIZE;
    net::SocketAddress address;
    const bool named = m.name != 0;
    if (send && named)
        if (int64_t r = read_address(m.name, m.name_length, address); r < 0) return r;
    int64_t total = 0;
    for (uint64_t i = 0; i < m.iov_count; ++i) {
        uint64_t iov[2];
        if (copy_from_user(iov, m.iov + 16 * i, 16) != 0) return -EFAULT;
        if (iov[1] == 0) continue;
        const int64_t n = send ? s->send_to(fs::IoBuffer::user(iov[0]), iov[1], flags, named ? &address : nullptr)
                               : s->receive_from(fs::IoBuffer::user(iov[0]), iov[1], flags, &address);
        if (n < 0) return total > 0 ? total : n;
        total += n;
        // A datagram socket sends or receives one datagram per call, the first buffer's worth.
        if (static_cast<uint64_t>(n) < iov[1] || s->type() == 2) break;
    }
    if (!send) {
        if (named && write_address(m.name, header + offsetof(MessageHeader, name_length), address) < 0) return -EFAULT;
        const uint64_t no_control = 0;
        if (copy_to_user(header + offsetof(MessageHeader, control_length), &no_control, 8) != 0) return -EFAULT;
        const int32_t no_flags = 0;
        if (copy_to_user(header + offsetof(MessageHeader, flags), &no_flags, 4) != 0) return -EFAULT;
    }
    return total;
}

int64_t sys_sendmsg(SyscallArgs& a) { return message_io(a.a[0], a.a[1], static_cast<int>(a.a[2]), true); }
int64_t sys_recvmsg(SyscallArgs& a) { return message_io(a.a[0], a.a[1], static_cast<int>(a.a[2]), false); }

// sendmmsg and recvmmsg: sendmsg and recvmsg over an array of struct mmsghdr (a msghdr and the
// bytes it moved), until one would fail (its error is reported if it is the first) or, for
// recvmmsg with MSG_WAITFORONE, would block after the first.
int64_t multiple_message_io(SyscallArgs& a, bool send) {
    constexpr uint64_t kEntrySize = sizeof(MessageHeader) + 8, kMaxEntries = 1024;
    constexpr int kMsgWaitForOne = 0x10000;
    const uint64_t count = a.a[2] < kMaxEntries ? a.a[2] : kMaxEntries;
    int flags = static_cast<int>(a.a[3]);
    uint64_t done = 0;
    for (; done < count; ++done) {
        const uint64_t entry = a.a[1] + done * kEntrySize;
        const int64_t n = message_io(a.a[0], entry, flags & ~kMsgWaitForOne, send);
        if (n < 0) {
            if (done == 0) return n;
            break;
        }
        if (put_user(entry + sizeof(MessageHeader), static_cast<uint32_t>(n)) != 0) return done > 0 ? done : -EFAULT;
        if (!send && (flags & kMsgWaitForOne)) flags |= net::kMsgDontWait;
    }
    return static_cast<int64_t>(done);
}

int64_t sys_sendmmsg(SyscallArgs& a) { return multiple_message_io(a, true); }
int64_t sys_recvmmsg(SyscallArgs& a) { return multiple_message_io(a, false); }

int64_t sys_socketpair(SyscallArgs&) { return -EAFNOSUPPORT; }  // AF_UNIX is not there yet

}  // namespace

void register_socket_syscalls(SyscallHandler* t) {
    t[41] = sys_socket;  // partial: AF_INET only
    t[42] = sys_connect;
    t[43] = sys_accept;
    t[44] = sys_sendto;
    t[45] = sys_recvfrom;
    t[46] = sys_sendmsg;
    t[47] = sys_recvmsg;
    t[307] = sys_sendmmsg;
    t[299] = sys_recvmmsg;  // partial: the timeout is not honoured (MSG_WAITFORONE is)
    t[48] = sys_shutdown;
    t[49] = sys_bind;
    t[50] = sys_listen;
    t[51] = sys_getsockname;
    t[52] = sys_getpeername;
    t[53] = sys_socketpair;  // refused: no AF_UNIX yet (EAFNOSUPPORT)
    t[54] = sys_setsockopt;
    t[55] = sys_getsockopt;
    t[288] = sys_accept4;
}

}  // namespace kiln::linux
