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
    identity();
    puts("process_info: ok");
    return 0;
}
