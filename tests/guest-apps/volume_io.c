// Files on a volume (an ext4 file system the kernel mounted): what the volume tests drive.
//   volume_io write DIR N    N files, each fsync'd, "synced I" after each; a directory, a rename,
//                            a symlink and a removal along the way
//   volume_io verify DIR N   every file of `write` whole: "verified N"
//   volume_io stream DIR MAX [MS]  files until MAX (or until killed), "synced I" after each
//                            fsync, MS milliseconds apart
//   volume_io count DIR      "files N": how many stream files are whole
// Contents are a pattern of the file's number, so a torn or lost write is seen.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("FAIL %s:%d %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); \
            fflush(stdout);                                                         \
            return 1;                                                               \
        }                                                                           \
    } while (0)

static size_t size_of(int i) { return 1000 + (size_t)i * 7919 % 60000; }

static void fill(char* buf, size_t size, int i) {
    unsigned x = (unsigned)i * 2654435761u + 1;
    for (size_t k = 0; k < size; ++k) {
        x = x * 1103515245u + 12345u;
        buf[k] = (char)(x >> 16);
    }
}

static int write_file(const char* path, int i) {
    static char buf[70000];
    const size_t size = size_of(i);
    fill(buf, size, i);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, buf, size) == (ssize_t)size);
    CHECK(fsync(fd) == 0);
    CHECK(close(fd) == 0);
    return 0;
}

static int check_file(const char* path, int i) {
    static char want[70000], got[70000];
    const size_t size = size_of(i);
    fill(want, size, i);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 1;
    ssize_t n = read(fd, got, sizeof(got));
    close(fd);
    return n == (ssize_t)size && memcmp(want, got, size) == 0 ? 0 : 1;
}

static int do_write(const char* dir, int n) {
    char path[512], other[512];
    snprintf(path, sizeof(path), "%s/sub", dir);
    CHECK(mkdir(path, 0755) == 0 || errno == EEXIST);
    for (int i = 0; i < n; ++i) {
        snprintf(path, sizeof(path), "%s/sub/tmp-%d", dir, i);
        if (write_file(path, i)) return 1;
        snprintf(other, sizeof(other), "%s/sub/f%d", dir, i);
        CHECK(rename(path, other) == 0);
        printf("synced %d\n", i);
        fflush(stdout);
    }
    snprintf(path, sizeof(path), "%s/scratch", dir);
    if (write_file(path, 12345)) return 1;
    CHECK(unlink(path) == 0);
    snprintf(path, sizeof(path), "%s/link", dir);
    unlink(path);
    CHECK(symlink("sub/f0", path) == 0);
    sync();
    printf("wrote %d\n", n);
    return 0;
}

static int do_verify(const char* dir, int n) {
    char path[512];
    for (int i = 0; i < n; ++i) {
        snprintf(path, sizeof(path), "%s/sub/f%d", dir, i);
        if (check_file(path, i)) {
            printf("FAIL %s is missing or not what was written\n", path);
            return 1;
        }
    }
    snprintf(path, sizeof(path), "%s/link", dir);
    char target[64] = {0};
    CHECK(readlink(path, target, sizeof(target) - 1) > 0 && strcmp(target, "sub/f0") == 0);
    snprintf(path, sizeof(path), "%s/scratch", dir);
    CHECK(access(path, F_OK) != 0);
    printf("verified %d\n", n);
    return 0;
}

static int do_stream(const char* dir, int max, int delay_ms) {
    char path[512];
    for (int i = 0; i < max; ++i) {
        snprintf(path, sizeof(path), "%s/s%d", dir, i);
        if (write_file(path, i)) return 1;
        printf("synced %d\n", i);
        fflush(stdout);
        if (delay_ms > 0) usleep((useconds_t)delay_ms * 1000);
    }
    return 0;
}

// The stream files that are whole, counted from s0 up to the first that is not.
static int do_count(const char* dir) {
    char path[512];
    int i = 0;
    for (;; ++i) {
        snprintf(path, sizeof(path), "%s/s%d", dir, i);
        if (check_file(path, i)) break;
    }
    printf("files %d\n", i);
    return 0;
}

int main(int argc, char** argv) {
    if (argc >= 4 && strcmp(argv[1], "write") == 0) return do_write(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "verify") == 0) return do_verify(argv[2], atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "stream") == 0)
        return do_stream(argv[2], atoi(argv[3]), argc >= 5 ? atoi(argv[4]) : 0);
    if (argc >= 3 && strcmp(argv[1], "count") == 0) return do_count(argv[2]);
    fprintf(stderr, "usage: volume_io write|verify DIR N | stream DIR MAX [MS] | count DIR\n");
    return 2;
}
