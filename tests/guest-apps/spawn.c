// Processes as a shell and a supervisor use them: posix_spawn, vfork + execve, fork (with and
// without execve), pipes between processes, wait statuses, process groups, #! scripts, and
// execve's errors. Prints "spawn: ok" and exits 0 when every check passes.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int failures = 0;
#define CHECK(cond, ...)                            \
    do {                                            \
        if (!(cond)) {                              \
            printf("spawn: FAILED %s: ", #cond);    \
            printf(__VA_ARGS__);                    \
            printf(" (errno %d)\n", errno);         \
            ++failures;                             \
        }                                           \
    } while (0)

static int shared_global = 1;

// Reads everything from `fd` into `buf`; returns the length.
static size_t read_all(int fd, char* buf, size_t size) {
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
    }
    buf[n] = 0;
    return n;
}

// The hello program beside this one: the variant that runs anywhere in one address space.
static const char* hello(void) { return "/bin/hello-pie"; }

static void check_posix_spawn(void) {
    pid_t pid;
    char* argv[] = {"hello-pie", "3", NULL};
    int r = posix_spawn(&pid, hello(), NULL, NULL, argv, environ);
    CHECK(r == 0, "posix_spawn returned %d", r);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3, "status %#x", status);

    // Its output through a pipe, set up with file actions as a supervisor does.
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    char* argv2[] = {"hello-dyn", NULL};
    r = posix_spawn(&pid, "/bin/hello-dyn", &actions, NULL, argv2, environ);
    CHECK(r == 0, "posix_spawn of a dynamic program returned %d", r);
    close(fds[1]);
    char buf[256];
    read_all(fds[0], buf, sizeof(buf));
    close(fds[0]);
    CHECK(strstr(buf, "hello from a static Linux binary") != NULL, "output %s", buf);
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);

    r = posix_spawn(&pid, "/bin/no-such-program", NULL, NULL, argv, environ);
    CHECK(r == ENOENT, "posix_spawn of a missing program returned %d", r);
}

static void check_vfork(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        execl(hello(), "hello-pie", "4", (char*)NULL);
        _exit(99);
    }
    CHECK(pid > 0, "vfork");
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 4, "status %#x", status);
}

static void check_fork(void) {
    // The child's changes stay the child's.
    char* heap = malloc(100000);
    memset(heap, 'p', 100000);
    int on_stack = 5;
    pid_t pid = fork();
    if (pid == 0) {
        shared_global = 2;
        on_stack = 6;
        memset(heap, 'c', 100000);
        free(heap);
        void* more = malloc(1 << 20);  // a fresh mapping, gone for the parent
        memset(more, 1, 1 << 20);
        _exit(getppid() > 0 && shared_global == 2 ? 9 : 10);
    }
    CHECK(pid > 0, "fork");
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 9, "status %#x", status);
    CHECK(shared_global == 1 && on_stack == 5, "the parent sees %d %d", shared_global, on_stack);
    int intact = 1;
    for (int i = 0; i < 100000; ++i) intact &= heap[i] == 'p';
    CHECK(intact, "the parent's heap changed");
    free(heap);

    // fork + execve with the output in a pipe: what a shell does for `cmd | ...`.
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/bin/hello-dyn", "hello-dyn", (char*)NULL);
        _exit(98);
    }
    close(fds[1]);
    char buf[256];
    read_all(fds[0], buf, sizeof(buf));
    close(fds[0]);
    CHECK(strstr(buf, "hello from a static Linux binary") != NULL, "output %s", buf);
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 0, "status %#x", status);

    // A pipeline of two forked children, the second reading the first's output to the end.
    CHECK(pipe(fds) == 0, "pipe");
    pid_t writer = fork();
    if (writer == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(hello(), "hello-pie", (char*)NULL);
        _exit(97);
    }
    close(fds[1]);
    pid_t reader = fork();
    if (reader == 0) {
        char text[256];
        size_t n = read_all(fds[0], text, sizeof(text));
        _exit(strstr(text, "hello from") != NULL ? (int)(n & 0x7f) : 96);
    }
    close(fds[0]);
    int writer_status = 0, reader_status = 0;
    CHECK(waitpid(writer, &writer_status, 0) == writer && WEXITSTATUS(writer_status) == 0, "writer %#x",
          writer_status);
    CHECK(waitpid(reader, &reader_status, 0) == reader && WIFEXITED(reader_status) &&
              WEXITSTATUS(reader_status) > 10 && WEXITSTATUS(reader_status) < 96,
          "reader %#x", reader_status);

    // A child killed by a signal, and wait's other forms.
    pid = fork();
    if (pid == 0) {
        raise(SIGTERM);
        _exit(95);
    }
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    CHECK(waitid(P_PID, (id_t)pid, &info, WEXITED) == 0, "waitid");
    CHECK(info.si_pid == pid && info.si_code == CLD_KILLED && info.si_status == SIGTERM, "waitid code %d status %d",
          info.si_code, info.si_status);
    CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD, "no child is left");
}

static void check_groups(void) {
    pid_t pid = fork();
    if (pid == 0) {
        if (setpgid(0, 0) != 0) _exit(80);
        if (getpgrp() != getpid()) _exit(81);
        if (setsid() != -1 || errno != EPERM) _exit(82);  // a group leader cannot start a session
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
    CHECK(getpgid(0) == getpgrp(), "getpgid");
}

static void check_execve_errors(void) {
    char* argv[] = {"x", NULL};
    errno = 0;
    CHECK(execve("/bin/no-such-program", argv, environ) == -1 && errno == ENOENT, "a missing program");
    CHECK(execve("/etc/motd", argv, environ) == -1 && errno == ENOEXEC, "a text file");
    CHECK(execve("/bin", argv, environ) == -1 && errno == EACCES, "a directory");
    CHECK(execve("/bin/hello-no-linker", argv, environ) == -1 && errno == ENOENT, "a program without its linker");
}

// A program linked at fixed addresses runs beside a position-independent parent; beside a parent
// at those same addresses it is refused (ENOMEM, and the console says why).
static void check_fixed_address(void) {
    const int parent_fixed = (uintptr_t)&check_fixed_address < 0x10000000;
    char* argv[] = {"hello", "2", NULL};
    pid_t pid;
    const int r = posix_spawn(&pid, "/bin/hello", NULL, NULL, argv, environ);
    if (parent_fixed) {
        CHECK(r == ENOMEM, "a second fixed-address program: %d", r);
        return;
    }
    CHECK(r == 0, "a fixed-address program beside a PIE: %d", r);
    int status = 0;
    CHECK(r != 0 || (waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 2), "status %#x", status);
}

// execveat: of a descriptor (fexecve) and relative to a directory.
static void check_execveat(void) {
    char* argv[] = {"hello-pie", "8", NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(hello(), O_RDONLY);
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        _exit(92);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 8, "execveat of a descriptor: %#x", status);
    pid = fork();
    if (pid == 0) {
        int dir = open("/bin", O_RDONLY | O_DIRECTORY);
        syscall(SYS_execveat, dir, "hello-pie", argv, environ, 0);
        _exit(91);
    }
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 8, "execveat in a directory: %#x", status);
    int file = open("/etc/motd", O_RDONLY);
    CHECK(syscall(SYS_execveat, file, "x", argv, environ, 0) == -1 && errno == ENOTDIR, "execveat below a file");
    close(file);
}

static void check_script(void) {
    // A #! script: the interpreter gets its argument, the script's path, then the arguments.
    int fd = open("/tmp/script.sh", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(fd >= 0, "open");
    const char text[] = "#!/bin/hello-pie 6\nthis is not run\n";
    CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1), "write");
    close(fd);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/tmp/script.sh", "script.sh", (char*)NULL);
        _exit(94);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 6, "status %#x", status);
}

// What is not a script, or names nothing that runs, is refused by execve before the caller's
// image goes: the caller goes on with the error.
static void check_bad_scripts(void) {
    int data = open("/tmp/data.txt", O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(data >= 0 && write(data, "plain text\n", 11) == 11, "data.txt");
    close(data);
    static const struct {
        const char* text;
        int error;
    } cases[] = {
        {"#!\n", ENOEXEC},                          // no interpreter
        {"#! \t \n", ENOEXEC},                      // blanks only
        {"#!/no/such/interpreter\n", ENOENT},       // names nothing
        {"#!\x01\x02\xff\xfe arg\n", ENOENT},       // bytes that name nothing
        {"#!/bin/hello-pie\r\n", ENOENT},           // a DOS line end is part of the name, as on Linux
        {"#!/tmp/data.txt\n", ENOEXEC},             // names a file that is not a program
        {"#!/tmp/bad.sh\n", ELOOP},                 // names itself
    };
    char* argv[] = {"bad.sh", NULL};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
        int fd = open("/tmp/bad.sh", O_CREAT | O_WRONLY | O_TRUNC, 0755);
        CHECK(fd >= 0, "open");
        CHECK(write(fd, cases[i].text, strlen(cases[i].text)) == (ssize_t)strlen(cases[i].text), "write");
        close(fd);
        errno = 0;
        CHECK(execve("/tmp/bad.sh", argv, environ) == -1 && errno == cases[i].error,
              "bad script %zu: errno %d, wanted %d", i, errno, cases[i].error);
    }
    unlink("/tmp/bad.sh");
    unlink("/tmp/data.txt");
}

static unsigned long free_kib(void) {
    struct sysinfo info;
    sysinfo(&info);
    return (unsigned long)(info.freeram * info.mem_unit / 1024);
}

// Every process's memory comes back: many spawns and forks leave free memory where it was.
static void check_no_leak(void) {
    char* argv[] = {"hello-pie", "0", NULL};
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    for (int round = 0; round < (getenv("SPAWN_DEBUG") ? 6 : 2); ++round) {
        const unsigned long before = free_kib();
        for (int i = 0; i < 100; ++i) {
            pid_t pid;
            int status = 0;
            if (posix_spawn(&pid, hello(), &quiet, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) != pid) {
                CHECK(0, "spawn %d", i);
                return;
            }
            pid = fork();
            if (pid == 0) {
                void* p = malloc(256 * 1024);
                memset(p, 1, 256 * 1024);
                _exit(0);
            }
            waitpid(pid, &status, 0);
        }
        const unsigned long after = free_kib();
        // The first round may leave page tables and heap the next one reuses; the second not.
        if (getenv("SPAWN_DEBUG")) printf("round %d: %lu -> %lu KiB\n", round, before, after);
        if (round == 1) CHECK(after + 64 >= before, "free memory went from %lu KiB to %lu KiB", before, after);
    }
}

int main(int argc, char** argv) {
    if (argc > 1 && strcmp(argv[1], "exec-self") == 0) {
        // The last step of an entrypoint: exec into the server, keeping the pid.
        printf("spawn: exec as pid %d\n", getpid());
        fflush(stdout);
        execl(hello(), "hello-pie", "0", (char*)NULL);
        return 93;
    }
    check_posix_spawn();
    check_vfork();
    // /proc/self/exe is each process's own program, whatever its children ran.
    char exe[256] = {0};
    CHECK(readlink("/proc/self/exe", exe, sizeof(exe) - 1) > 0 && strcmp(exe, argv[0]) == 0, "/proc/self/exe is %s",
          exe);
    check_fork();
    check_groups();
    check_execve_errors();
    check_script();
    check_bad_scripts();
    check_execveat();
    check_fixed_address();
    check_no_leak();
    if (failures == 0) printf("spawn: ok\n");
    return failures == 0 ? 0 : 1;
}
