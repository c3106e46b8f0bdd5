// A TCP echo server for integrity tests: epoll, non-blocking, many connections at once. Every
// byte read is written back; a connection ends when its peer closes.
//   echo_server [PORT]
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct conn {
    int fd;
    size_t pending, offset;  // bytes read but not yet echoed
    char buffer[65536];
};

static void update(int ep, struct conn* c) {
    struct epoll_event ev = {.events = c->pending ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

int main(int argc, char** argv) {
    const int port = argc > 1 ? atoi(argv[1]) : 7;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(l, (struct sockaddr*)&a, sizeof(a)) || listen(l, 4096)) {
        perror("echo_server");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    printf("echo_server: port %d\n", port);
    fflush(stdout);
    struct epoll_event events[512];
    for (;;) {
        int n = epoll_wait(ep, events, 512, -1);
        for (int i = 0; i < n; ++i) {
            struct conn* c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    c = calloc(1, sizeof(*c));
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            int done = 0;
            if (c->pending) {
                ssize_t w = write(c->fd, c->buffer + c->offset, c->pending);
                if (w > 0) {
                    c->offset += (size_t)w;
                    c->pending -= (size_t)w;
                } else if (w < 0 && errno != EAGAIN) {
                    done = 1;
                }
            } else {
                ssize_t r = read(c->fd, c->buffer, sizeof(c->buffer));
                if (r > 0) {
                    c->pending = (size_t)r;
                    c->offset = 0;
                    ssize_t w = write(c->fd, c->buffer, c->pending);
                    if (w > 0) {
                        c->offset = (size_t)w;
                        c->pending -= (size_t)w;
                    }
                } else if (r == 0 || errno != EAGAIN) {
                    done = 1;
                }
            }
            if (done) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            } else {
                update(ep, c);
            }
        }
    }
}
