// A small HTTP/1.1 server: epoll, non-blocking sockets, keep-alive, GET of files under a root
// directory (default /www) and of /hello. Static, so it runs unmodified on the Kiln kernel.
//
//   server [PORT] [ROOT]      (PORT also from $PORT)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kBuffer = 8192 };

// One client. A response is a header (and small body) in `out`, then perhaps a file sent with
// sendfile; when the socket is full the rest waits for EPOLLOUT, so a slow client never holds
// up the others.
struct connection {
    int fd;
    size_t used;  // bytes of request[]
    char request[kBuffer];
    char out[512];
    size_t out_size, out_sent;
    int file;  // -1: none
    off_t file_offset, file_size;
    int keep_alive;
    size_t consumed;  // length of the request being answered
};

static const char* root = "/www";
static int epoll_fd;

// While a response is being sent, the connection waits for room to write, not for more requests.
static void want_output(struct connection* c, int output) {
    struct epoll_event ev = {.events = output ? EPOLLOUT : EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int sending(const struct connection* c) { return c->out_sent < c->out_size || c->file >= 0; }

// Prepares the answer to the request at the front of the buffer.
static int respond(struct connection* c, const char* path) {
    const char* connection = c->keep_alive ? "keep-alive" : "close";
    int n;
    if (strcmp(path, "/hello") == 0) {
        const char* body = "hello from kiln\n";
        n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n%s",
                     strlen(body), connection, body);
    } else {
        char file[1024];
        if (strstr(path, "..") || snprintf(file, sizeof(file), "%s%s", root, path) >= (int)sizeof(file)) return -1;
        int fd = open(file, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0) close(fd);
            n = snprintf(c->out, sizeof(c->out),
                         "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\nConnection: %s\r\n\r\nnot found\n", connection);
        } else {
            n = snprintf(c->out, sizeof(c->out),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %lld\r\n"
                         "Connection: %s\r\n\r\n",
                         (long long)st.st_size, connection);
            c->file = fd;
            c->file_offset = 0;
            c->file_size = st.st_size;
        }
    }
    c->out_size = (size_t)n;
    c->out_sent = 0;
    return 0;
}

// Sends what the socket takes. Returns 1 when the response is complete, 0 when the socket is
// full, -1 on error.
static int pump(struct connection* c) {
    while (c->out_sent < c->out_size) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_size - c->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EAGAIN) return 0;
        if (n < 0 && errno != EINTR) return -1;
        if (n > 0) c->out_sent += (size_t)n;
    }
    while (c->file >= 0 && c->file_offset < c->file_size) {
        ssize_t n = sendfile(c->fd, c->file, &c->file_offset, (size_t)(c->file_size - c->file_offset));
        if (n < 0 && errno == EAGAIN) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
    if (c->file >= 0) close(c->file);
    c->file = -1;
    return 1;
}

// Answers every complete request in the buffer, in order. Returns -1 when the connection
// should close.
static int serve(struct connection* c) {
    for (;;) {
        if (sending(c)) {
            int sent = pump(c);
            if (sent < 0) return -1;
            if (sent == 0) {
                want_output(c, 1);
                return 0;
            }
            if (!c->keep_alive) return -1;
            memmove(c->request, c->request + c->consumed, c->used - c->consumed);
            c->used -= c->consumed;
            want_output(c, 0);
        }
        c->request[c->used] = 0;
        char* end = strstr(c->request, "\r\n\r\n");
        if (!end) return c->used >= kBuffer - 1 ? -1 : 0;
        end[2] = 0;  // this request's headers only: a pipelined one may follow
        char method[16], path[512], version[16];
        if (sscanf(c->request, "%15s %511s %15s", method, path, version) != 3 || strcmp(method, "GET") != 0) return -1;
        c->keep_alive = strcmp(version, "HTTP/1.1") == 0 && !strcasestr(c->request, "connection: close");
        c->consumed = (size_t)(end + 4 - c->request);
        if (respond(c, path) != 0) return -1;
    }
}

static void close_connection(struct connection* c) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->file >= 0) close(c->file);
    free(c);
}

int main(int argc, char** argv) {
    int port = argc > 1 ? atoi(argv[1]) : (getenv("PORT") ? atoi(getenv("PORT")) : 8080);
    if (argc > 2) root = argv[2];
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = {INADDR_ANY}};
    if (bind(listener, (struct sockaddr*)&address, sizeof(address)) != 0 || listen(listener, 1024) != 0) {
        perror("listen");
        return 1;
    }
    epoll_fd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &ev);
    printf("http-c: listening on port %d, serving %s\n", port, root);
    fflush(stdout);
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(epoll_fd, events, 256, -1);
        for (int i = 0; i < n; ++i) {
            struct connection* c = events[i].data.ptr;
            if (c == NULL) {
                for (;;) {
                    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
                    if (fd < 0) break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct connection* fresh = calloc(1, sizeof(*fresh));
                    fresh->fd = fd;
                    fresh->file = -1;
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = fresh};
                    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int failed = 0;
            if (!sending(c)) {
                ssize_t got = recv(c->fd, c->request + c->used, kBuffer - 1 - c->used, 0);
                if (got > 0) c->used += (size_t)got;
                failed = got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR);
            }
            if (failed || serve(c) != 0) close_connection(c);
        }
    }
}
