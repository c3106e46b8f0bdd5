// A counter kept on a volume, over HTTP: what the volume tests of kilnd drive through the load
// balancer (restart, kill -9, scale-to-zero).
//   counter_server PORT FILE
//   GET /add: the counter in FILE plus one, written and fsync'd before the answer; GET /get: it.
// One connection at a time (Connection: close): the tests send one request after another.
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static long read_counter(const char* file) {
    char text[32] = {0};
    int fd = open(file, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    return n > 0 ? atol(text) : 0;
}

// Written to a new file, fsync'd, renamed over the old one, and the directory fsync'd (which makes
// the rename durable): the counter is never torn, and what was acknowledged stays.
static int write_counter(const char* file, long value) {
    char tmp[512], text[32];
    snprintf(tmp, sizeof(tmp), "%s.new", file);
    int fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int len = snprintf(text, sizeof(text), "%ld\n", value);
    int ok = write(fd, text, (size_t)len) == len && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, file) != 0) return -1;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", file);
    char* slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    int dir_fd = open(slash && dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0) return -1;
    ok = fsync(dir_fd) == 0;
    close(dir_fd);
    return ok ? 0 : -1;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: counter_server PORT FILE\n");
        return 2;
    }
    const char* file = argv[2];
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    if (bind(s, (struct sockaddr*)&addr, sizeof(addr)) != 0 || listen(s, 64) != 0) {
        perror("counter_server: listen");
        return 1;
    }
    printf("counter_server: %s holds %ld\n", file, read_counter(file));
    fflush(stdout);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        char request[2048];
        ssize_t n = read(c, request, sizeof(request) - 1);
        if (n <= 0) {
            close(c);
            continue;
        }
        request[n] = 0;
        long value = read_counter(file);
        const char* status = "200 OK";
        if (strncmp(request, "GET /add ", 9) == 0) {
            if (write_counter(file, value + 1) == 0)
                ++value;
            else
                status = "500 Internal Server Error";
        } else if (strncmp(request, "GET /get ", 9) != 0) {
            status = "404 Not Found";
        }
        char body[32], response[256];
        int body_len = snprintf(body, sizeof(body), "%ld\n", value);
        int len = snprintf(response, sizeof(response),
                           "HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, body_len, body);
        if (write(c, response, (size_t)len) < 0) perror("counter_server: write");
        close(c);
    }
}
