// The guest as a network client: resolves a name with libc's resolver (DNS over UDP to the
// server /etc/resolv.conf names), connects to a TCP server, sends a line, prints the answer.
//   net_client NAME PORT MESSAGE
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (argc < 4) return 2;
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *result;
    int rc = getaddrinfo(argv[1], argv[2], &hints, &result);
    if (rc != 0) {
        printf("net_client: cannot resolve %s: %s\n", argv[1], gai_strerror(rc));
        return 1;
    }
    char ip[32];
    inet_ntop(AF_INET, &((struct sockaddr_in*)result->ai_addr)->sin_addr, ip, sizeof(ip));
    printf("net_client: %s is %s\n", argv[1], ip);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, result->ai_addr, result->ai_addrlen) != 0) {
        perror("net_client: connect");
        return 1;
    }
    dprintf(fd, "%s\n", argv[3]);
    shutdown(fd, SHUT_WR);
    char reply[256];
    ssize_t n, total = 0;
    while ((n = read(fd, reply + total, sizeof(reply) - 1 - (size_t)total)) > 0) total += n;
    reply[total] = 0;
    printf("net_client: reply: %s", reply);
    close(fd);
    return 0;
}
