#include "host/tender_orders.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kiln::host {

namespace {

constexpr size_t kStreams = 3;  // stdin, stdout, stderr

// One orders message: the arguments in `data`, the streams' fds in `control`.
struct OrdersMessage {
    iovec data;
    alignas(cmsghdr) char control[CMSG_SPACE(kStreams * sizeof(int))] = {};
    msghdr header{};

    OrdersMessage(char* bytes, size_t size) : data{bytes, size} {
        header.msg_iov = &data;
        header.msg_iovlen = 1;
        header.msg_control = control;
        header.msg_controllen = sizeof(control);
    }
    OrdersMessage(const OrdersMessage&) = delete;
    OrdersMessage& operator=(const OrdersMessage&) = delete;
};

}  // namespace

bool send_orders(int socket, const std::vector<std::string>& args, StandardStreams streams) {
    std::string payload;
    for (const auto& arg : args) payload.append(arg).push_back('\0');
    if (payload.size() > kMaxOrdersBytes) return false;
    const int fds[kStreams] = {streams.in, streams.out, streams.err};
    OrdersMessage message(payload.data(), payload.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message.header);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(fds));
    std::memcpy(CMSG_DATA(header), fds, sizeof(fds));
    ssize_t sent;
    do sent = ::sendmsg(socket, &message.header, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    return sent == static_cast<ssize_t>(payload.size());
}

namespace {

// The orders over the process's own argument area (contiguous from argv[0] to the end of the
// last argument), the rest of it zeroed.
void show_as_command_line(int argc, char** argv, const std::vector<std::string>& args) {
    char* const start = argv[0];
    char* const end = argv[argc - 1] + std::strlen(argv[argc - 1]);
    char* at = start;
    for (const auto& arg : args) {
        if (at + arg.size() >= end) break;
        std::memcpy(at, arg.c_str(), arg.size() + 1);
        at += arg.size() + 1;
    }
    std::memset(at, 0, static_cast<size_t>(end - at));
}

}  // namespace

TenderArguments::TenderArguments(int argc, char** argv, const std::function<void()>& while_waiting) {
    if (argc > 1 && std::strcmp(argv[1], kAwaitOrdersFlag) == 0)
        await_orders(argc, argv, while_waiting);
    else
        words_.assign(argv, argv + argc);
    for (auto& word : words_) pointers_.push_back(word.data());
    pointers_.push_back(nullptr);
}

void TenderArguments::await_orders(int argc, char** argv, const std::function<void()>& while_waiting) {
    if (argc != 4) {
        std::fprintf(stderr, "%s: usage: %s %s FD PADDING\n", argv[0], argv[0], kAwaitOrdersFlag);
        dismissed_ = 2;
        return;
    }
    if (while_waiting) while_waiting();
    const int socket = std::atoi(argv[2]);
    std::string payload(kMaxOrdersBytes, '\0');
    int fds[kStreams] = {-1, -1, -1};
    OrdersMessage message(payload.data(), payload.size());
    ssize_t received;
    do received = ::recvmsg(socket, &message.header, MSG_CMSG_CLOEXEC);
    while (received < 0 && errno == EINTR);
    ::close(socket);
    if (received <= 0) {  // kilnd let it go
        dismissed_ = 0;
        return;
    }
    const cmsghdr* header = CMSG_FIRSTHDR(&message.header);
    if (header == nullptr || header->cmsg_type != SCM_RIGHTS || header->cmsg_len != CMSG_LEN(sizeof(fds)) ||
        (message.header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 ||
        payload[static_cast<size_t>(received) - 1] != '\0') {
        std::fprintf(stderr, "%s: malformed orders on fd %d\n", argv[0], socket);
        dismissed_ = 2;
        return;
    }
    std::memcpy(fds, CMSG_DATA(header), sizeof(fds));
    for (int i = 0; i < static_cast<int>(kStreams); ++i) {
        if (::dup2(fds[i], i) < 0) {
            dismissed_ = 2;
            return;
        }
        ::close(fds[i]);
    }
    words_.emplace_back(argv[0]);
    for (size_t at = 0; at < static_cast<size_t>(received);) {
        words_.emplace_back(payload.c_str() + at);
        at += words_.back().size() + 1;
    }
    show_as_command_line(argc, argv, words_);
}

}  // namespace kiln::host
