// The proc platform's system-call fast path, seen from the application: after its first call,
// glibc's getppid() site (`mov $110,%eax; syscall`) must begin with a jump (its `syscall` kept in
// the last two bytes), and the call must keep working. Prints "rewrite_check: rewritten" or
// "rewrite_check: not rewritten" (exit 1). The rewrite is the instance's own: the program's file
// (which the kernel may map in place, read-only) must still hold the original instruction.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// True if the file holds `original` followed by the code after it.
static int file_holds(const char* path, const unsigned char* original, size_t original_size, const unsigned char* after,
                      size_t after_size) {
    static unsigned char file[4 << 20];
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    size_t size = 0;
    ssize_t n;
    while (size < sizeof(file) && (n = read(fd, file + size, sizeof(file) - size)) > 0) size += (size_t)n;
    close(fd);
    for (size_t i = 0; i + original_size + after_size <= size; ++i)
        if (memcmp(file + i, original, original_size) == 0 && memcmp(file + i + original_size, after, after_size) == 0)
            return 1;
    return 0;
}

static const unsigned char* find_site(void) {
    static const unsigned char site[] = {0xb8, 110, 0, 0, 0, 0x0f, 0x05};
    const unsigned char* code = (const unsigned char*)(void*)getppid;
    for (int i = 0; i < 64; ++i)
        if (memcmp(code + i, site, sizeof(site)) == 0) return code + i;
    return NULL;
}

int main(void) {
    const unsigned char* site = find_site();
    if (site == NULL) {
        printf("rewrite_check: no mov $110,%%eax; syscall in getppid\n");
        return 2;
    }
    for (int i = 0; i < 1000; ++i) {
        if (getppid() != 0) {  // pid 1 has no parent in Kiln
            printf("rewrite_check: getppid returned %d\n", (int)getppid());
            return 3;
        }
    }
    const int jump = site[0] == 0xe9 && site[5] == 0x0f && site[6] == 0x05;
    static const unsigned char original[] = {0xb8, 110, 0, 0, 0, 0x0f, 0x05};
    if (!file_holds("/bin/rewrite_check", original, sizeof(original), site + 7, 16)) {
        printf("rewrite_check: the rewrite reached the program's file\n");
        return 4;
    }
    // The program may make its own code writable too: it gets a copy, the file stays as it was.
    unsigned char after[16];
    memcpy(after, site + 7, sizeof(after));
    unsigned char* page = (unsigned char*)((uintptr_t)(site + 7) & ~(uintptr_t)4095);
    if (mprotect(page, 8192, PROT_READ | PROT_WRITE | PROT_EXEC) != 0) {
        printf("rewrite_check: mprotect of the code failed\n");
        return 5;
    }
    unsigned char* byte = (unsigned char*)site + 7;
    *byte ^= 0xff;
    const int file_kept = file_holds("/bin/rewrite_check", original, sizeof(original), after, sizeof(after));
    const int copy_changed = *byte != after[0];
    *byte ^= 0xff;
    mprotect(page, 8192, PROT_READ | PROT_EXEC);
    if (!file_kept || !copy_changed) {
        printf("rewrite_check: a write to the program's own code %s\n",
               file_kept ? "was lost" : "reached the program's file");
        return 6;
    }
    printf("rewrite_check: %s\n", jump ? "rewritten" : "not rewritten");
    return jump ? 0 : 1;
}
