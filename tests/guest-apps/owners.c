// Files' owners: what the root file system's archive gave them, what chown, fchown, lchown and
// fchownat make of them (-1 keeps an id), what a new file gets (the creator's fsuid and fsgid),
// and the errors Linux gives. Prints "owners: PATH UID:GID" for each path named on the command
// line, then "owners: ok" or the first check that failed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) {                                                          \
            printf("owners: line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

static int owned_by(const char* path, uid_t uid, gid_t gid) {
    struct stat st;
    return lstat(path, &st) == 0 && st.st_uid == uid && st.st_gid == gid;
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        struct stat st;
        CHECK(stat(argv[i], &st) == 0);
        printf("owners: %s %u:%u\n", argv[i], (unsigned)st.st_uid, (unsigned)st.st_gid);
    }

    // A new file is its creator's: root's here.
    const char* file = "/tmp/owned";
    int fd = open(file, O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(owned_by(file, 0, 0));

    CHECK(chown(file, 1234, 5678) == 0);
    CHECK(owned_by(file, 1234, 5678));
    CHECK(chown(file, (uid_t)-1, 99) == 0);  // -1: unchanged
    CHECK(owned_by(file, 1234, 99));
    CHECK(fchown(fd, 70000, (gid_t)-1) == 0);
    CHECK(owned_by(file, 70000, 99));
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_uid == 70000 && st.st_gid == 99);
    struct statx stx;
    CHECK(statx(AT_FDCWD, file, 0, STATX_BASIC_STATS, &stx) == 0 && stx.stx_uid == 70000 && stx.stx_gid == 99);
    CHECK(fchownat(fd, "", 5, 6, AT_EMPTY_PATH) == 0);
    CHECK(owned_by(file, 5, 6));
    CHECK(fchownat(AT_FDCWD, file, 7, 8, 0) == 0);
    CHECK(owned_by(file, 7, 8));

    // A change of owner takes the set-user-ID bit off a file, and set-group-ID with group execution.
    CHECK(fchmod(fd, 06755) == 0);
    CHECK(fchown(fd, 7, 8) == 0);
    CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0755);
    close(fd);

    // lchown and AT_SYMLINK_NOFOLLOW change the link; chown follows it.
    const char* link = "/tmp/owned-link";
    CHECK(symlink(file, link) == 0);
    CHECK(lchown(link, 11, 12) == 0);
    CHECK(owned_by(link, 11, 12) && owned_by(file, 7, 8));
    CHECK(fchownat(AT_FDCWD, link, 13, 14, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(owned_by(link, 13, 14) && owned_by(file, 7, 8));
    CHECK(chown(link, 15, 16) == 0);
    CHECK(owned_by(link, 13, 14) && owned_by(file, 15, 16));

    // Errors.
    CHECK(chown("/tmp/missing", 1, 1) == -1 && errno == ENOENT);
    CHECK(fchown(999, 1, 1) == -1 && errno == EBADF);
    CHECK(fchownat(AT_FDCWD, file, 1, 1, 0x8000) == -1 && errno == EINVAL);
    CHECK(fchownat(AT_FDCWD, "", 1, 1, 0) == -1 && errno == ENOENT);
    CHECK(owned_by(file, 15, 16));

    // Files, directories and links made as another user are that user's (its fsuid and fsgid).
    CHECK(setegid(300) == 0 && seteuid(200) == 0);
    fd = open("/tmp/made-by-200", O_CREAT | O_WRONLY, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK(mkdir("/tmp/dir-by-200", 0700) == 0);
    CHECK(symlink("made-by-200", "/tmp/link-by-200") == 0);
    CHECK(owned_by("/tmp/made-by-200", 200, 300) && owned_by("/tmp/dir-by-200", 200, 300) &&
          owned_by("/tmp/link-by-200", 200, 300));
    CHECK(seteuid(0) == 0 && setegid(0) == 0);

    puts("owners: ok");
    return 0;
}
