// File I/O on the root file system: read a file from the initrd, create, write, seek, rename,
// list a directory, remove.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond) do { if (!(cond)) { printf("FAIL %s:%d %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); return 1; } } while (0)

int main(void) {
    char buf[256];
    int fd = open("/etc/motd", O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    CHECK(n > 0);
    buf[n] = 0;
    printf("motd: %s", buf);
    close(fd);

    CHECK(mkdir("/tmp/work", 0755) == 0);
    fd = open("/tmp/work/a.txt", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789", 10) == 10);
    CHECK(lseek(fd, 2, SEEK_SET) == 2);
    CHECK(read(fd, buf, 3) == 3 && memcmp(buf, "234", 3) == 0);
    CHECK(pwrite(fd, "XY", 2, 20) == 2);  // leaves a hole
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 22 && S_ISREG(st.st_mode));
    CHECK(pread(fd, buf, 2, 15) == 2 && buf[0] == 0 && buf[1] == 0);
    close(fd);

    CHECK(rename("/tmp/work/a.txt", "/tmp/work/b.txt") == 0);
    CHECK(access("/tmp/work/a.txt", F_OK) == -1 && errno == ENOENT);
    CHECK(stat("/tmp/work/b.txt", &st) == 0 && st.st_size == 22);
    CHECK(symlink("b.txt", "/tmp/work/link") == 0);
    CHECK(readlink("/tmp/work/link", buf, sizeof(buf)) == 5 && memcmp(buf, "b.txt", 5) == 0);

    DIR* d = opendir("/tmp/work");
    CHECK(d != NULL);
    int entries = 0;
    struct dirent* e;
    while ((e = readdir(d)) != NULL) entries++;
    closedir(d);
    CHECK(entries == 4);  // . .. b.txt link

    FILE* f = fopen("/tmp/work/c.txt", "w");
    CHECK(f != NULL);
    fprintf(f, "line %d\n", 42);
    fclose(f);
    f = fopen("/tmp/work/c.txt", "r");
    CHECK(f != NULL && fgets(buf, sizeof(buf), f) != NULL && strcmp(buf, "line 42\n") == 0);
    fclose(f);

    CHECK(unlink("/tmp/work/b.txt") == 0 && unlink("/tmp/work/link") == 0 && unlink("/tmp/work/c.txt") == 0);
    CHECK(rmdir("/tmp/work") == 0);
    CHECK(open("/nonexistent", O_RDONLY) == -1 && errno == ENOENT);

    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "pipe", 4) == 4);
    CHECK(read(p[0], buf, 4) == 4 && memcmp(buf, "pipe", 4) == 0);
    puts("fileio: ok");
    return 0;
}
