// The process's identity and scheduling, and the file calls beyond open/read/write: each checked
// against what Linux returns. Prints "process_info: ok" or the first check that failed.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("process_info: line %d: %s (errno %d)\n", __LINE__, #cond, errno); \
            exit(1);                                                                  \
        }                                                                             \
    } while (0)

// musl leaves sched_{get,set}{scheduler,param} unimplemented on purpose: the system calls, then.
static long getscheduler(pid_t pid) { return syscall(SYS_sched_getscheduler, pid); }
static long setscheduler(int policy, struct sched_param* p) { return syscall(SYS_sched_setscheduler, 0, policy, p); }

static void scheduling(void) {
    CHECK(getscheduler(0) == SCHED_OTHER);
    struct sched_param param = {.sched_priority = 10};
    CHECK(setscheduler(SCHED_FIFO, &param) == -1 && errno == EPERM);
    param.sched_priority = 0;
    CHECK(setscheduler(SCHED_BATCH, &param) == 0);
    CHECK(getscheduler(0) == SCHED_BATCH);
    CHECK(syscall(SYS_sched_getparam, 0, &param) == 0 && param.sched_priority == 0);
    CHECK(sched_get_priority_max(SCHED_FIFO) == 99 && sched_get_priority_min(SCHED_RR) == 1);
    CHECK(sched_get_priority_max(SCHED_OTHER) == 0);
    struct timespec slice;
    CHECK(sched_rr_get_interval(0, &slice) == 0 && slice.tv_sec == 0 && slice.tv_nsec == 10000000);
    CHECK(getscheduler(99999) == -1 && errno == ESRCH);
    errno = 0;
    CHECK(getpriority(PRIO_PROCESS, 0) == 0 && errno == 0);
    CHECK(setpriority(PRIO_PROCESS, 0, 5) == 0 && getpriority(PRIO_PROCESS, 0) == 5);
    unsigned cpu = 7, node = 7;
    CHECK(syscall(SYS_getcpu, &cpu, &node, NULL) == 0 && cpu == 0 && node == 0);
    CHECK(syscall(SYS_membarrier, 0, 0) > 0);                      // MEMBARRIER_CMD_QUERY: some are supported
    CHECK(syscall(SYS_membarrier, 8, 0) == -1 && errno == EPERM);  // PRIVATE_EXPEDITED, not registered
    CHECK(syscall(SYS_membarrier, 16, 0) == 0);                    // REGISTER_PRIVATE_EXPEDITED
    CHECK(syscall(SYS_membarrier, 8, 0) == 0);
    CHECK(syscall(SYS_personality, 0xffffffff) == 0);
    struct tms t;
    CHECK(times(&t) != (clock_t)-1);
    int status;
    CHECK(wait4(-1, &status, WNOHANG, NULL) == -1 && errno == ECHILD);
    CHECK(waitpid(-1, &status, 0) == -1 && errno == ECHILD);
}

static void names(void) {
    CHECK(sethostname("kiln-test", 9) == 0);
    struct utsname u;
    CHECK(uname(&u) == 0 && strcmp(u.nodename, "kiln-test") == 0);
    char name[65];
    CHECK(gethostname(name, sizeof(name)) == 0 && strcmp(name, "kiln-test") == 0);
}

static void files(void) {
    int fd = open("/tmp/a", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(fd >= 0);
    char one[] = "hello ", two[] = "kiln";
    struct iovec out[2] = {{one, 6}, {two, 4}};
    CHECK(pwritev(fd, out, 2, 10) == 10);
    char first[6] = {0}, second[4] = {0};
    struct iovec in[2] = {{first, 6}, {second, 4}};
    CHECK(preadv(fd, in, 2, 10) == 10 && memcmp(first, "hello ", 6) == 0 && memcmp(second, "kiln", 4) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 0);  // positioned calls leave the position alone
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL) == 0);
    CHECK(fdatasync(fd) == 0 && syncfs(fd) == 0);
    sync();
    close(fd);

    CHECK(link("/tmp/a", "/tmp/b") == 0);
    CHECK(link("/tmp/a", "/tmp/b") == -1 && errno == EEXIST);
    CHECK(link("/tmp", "/tmp/c") == -1 && errno == EPERM);
    fd = open("/tmp/b", O_RDONLY);
    char back[20] = {0};
    CHECK(fd >= 0 && pread(fd, back, 10, 10) == 10 && memcmp(back, "hello kiln", 10) == 0);
    close(fd);

    struct timeval when[2] = {{1000000000, 0}, {1000000000, 500000}};
    CHECK(utimes("/tmp/b", when) == 0);
    struct stat st;
    CHECK(stat("/tmp/a", &st) == 0 && st.st_mtim.tv_sec == 1000000000 && st.st_mtim.tv_nsec == 500000000);

    struct statfs fs;
    CHECK(statfs("/", &fs) == 0 && fs.f_type == 0x01021994 && fs.f_bsize == 4096 && fs.f_blocks > 0);
    CHECK(statfs("/nonexistent", &fs) == -1 && errno == ENOENT);

    fd = (int)syscall(SYS_memfd_create, "scratch", 1 /* MFD_CLOEXEC */);
    CHECK(fd >= 0 && write(fd, "memfd", 5) == 5);
    char* mapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(mapped != MAP_FAILED && memcmp(mapped, "memfd", 5) == 0);
    munmap(mapped, 4096);
    close(fd);
}

// close_range, mincore, sendmmsg and recvmmsg.
static void more_calls(void) {
    int fds[4];
    for (int i = 0; i < 4; ++i) CHECK((fds[i] = open("/etc/motd", O_RDONLY)) >= 0);
    CHECK(syscall(SYS_close_range, fds[2], ~0u, 4 /* CLOSE_RANGE_CLOEXEC */) == 0);
    CHECK(fcntl(fds[2], F_GETFD) == FD_CLOEXEC && fcntl(fds[1], F_GETFD) == 0);
    CHECK(syscall(SYS_close_range, fds[1], ~0u, 0) == 0);
    CHECK(fcntl(fds[0], F_GETFD) == 0 && fcntl(fds[1], F_GETFD) == -1 && errno == EBADF);
    CHECK(fcntl(fds[3], F_GETFD) == -1 && errno == EBADF);
    CHECK(syscall(SYS_close_range, 5, 4, 0) == -1 && errno == EINVAL);
    close(fds[0]);

    char* pages = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(pages != MAP_FAILED);
    pages[0] = 1;
    pages[2 * 4096] = 1;
    unsigned char resident[4];
    CHECK(mincore(pages, 4 * 4096, resident) == 0);
    CHECK((resident[0] & 1) && !(resident[1] & 1) && (resident[2] & 1) && !(resident[3] & 1));
    munmap(pages + 3 * 4096, 4096);
    CHECK(mincore(pages, 4 * 4096, resident) == -1 && errno == ENOMEM);
    CHECK(mincore(pages + 1, 4096, resident) == -1 && errno == EINVAL);
    munmap(pages, 3 * 4096);

    // Three datagrams over loopback in one sendmmsg, back in one recvmmsg.
    int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(9777), .sin_addr.s_addr = htonl(0x7f000001)};
    CHECK(rx >= 0 && tx >= 0 && bind(rx, (struct sockaddr*)&addr, sizeof(addr)) == 0);
    CHECK(connect(tx, (struct sockaddr*)&addr, sizeof(addr)) == 0);
    char out[3][8] = {"one", "two!", "three"};
    struct iovec out_iov[3];
    struct mmsghdr out_msgs[3];
    memset(out_msgs, 0, sizeof(out_msgs));
    for (int i = 0; i < 3; ++i) {
        out_iov[i] = (struct iovec){out[i], strlen(out[i])};
        out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
        out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    CHECK(sendmmsg(tx, out_msgs, 3, 0) == 3 && out_msgs[1].msg_len == 4);
    char in[4][16];
    struct iovec in_iov[4];
    struct mmsghdr in_msgs[4];
    memset(in_msgs, 0, sizeof(in_msgs));
    for (int i = 0; i < 4; ++i) {
        in_iov[i] = (struct iovec){in[i], sizeof(in[i])};
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    // Without MSG_WAITFORONE it waits for all three (loopback delivers them one by one).
    CHECK(recvmmsg(rx, in_msgs, 3, 0, NULL) == 3);
    CHECK(in_msgs[2].msg_len == 5 && memcmp(in[2], "three", 5) == 0 && memcmp(in[0], "one", 3) == 0);
    // With it, one, and then only what is already there: nothing more.
    CHECK(sendmmsg(tx, out_msgs, 1, 0) == 1);
    CHECK(recvmmsg(rx, in_msgs, 4, MSG_WAITFORONE, NULL) == 1 && in_msgs[0].msg_len == 3);
    close(rx);
    close(tx);
}

// Last: the process gives up root.
static void identity(void) {
    CHECK(getuid() == 0 && geteuid() == 0 && getgid() == 0);
    gid_t groups[4] = {33, 100};
    CHECK(setgroups(2, groups) == 0);
    CHECK(getgroups(0, NULL) == 2 && getgroups(4, groups) == 2 && groups[0] == 33 && groups[1] == 100);
    CHECK(setresgid(33, 33, 33) == 0);
    gid_t rg, eg, sg;
    CHECK(getresgid(&rg, &eg, &sg) == 0 && rg == 33 && eg == 33 && sg == 33);
    CHECK(setresuid(33, 33, 0) == 0);  // root is kept as the saved id
    uid_t ru, eu, su;
    CHECK(getresuid(&ru, &eu, &su) == 0 && ru == 33 && eu == 33 && su == 0);
    CHECK(setgroups(0, NULL) == -1 && errno == EPERM);
    CHECK(seteuid(0) == 0 && geteuid() == 0 && getuid() == 33);         // back, through the saved id
    CHECK(setuid(1000) == 0 && getuid() == 1000 && geteuid() == 1000);  // privileged: all three
    CHECK(setuid(0) == -1 && errno == EPERM);
    CHECK(setreuid(-1, 1000) == 0 && sethostname("x", 1) == -1 && errno == EPERM);
}

int main(void) {
    scheduling();
    names();
    files();
    more_calls();
    identity();
    puts("process_info: ok");
    return 0;
}
