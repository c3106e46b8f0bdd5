// The proc platform's system-call fast path, seen from the application: after its first call,
// glibc's getppid() site (`mov $110,%eax; syscall`) must begin with a jump (its `syscall` kept in
// the last two bytes), and the call must keep working. Prints "rewrite_check: rewritten" or
// "rewrite_check: not rewritten" (exit 1).
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    printf("rewrite_check: %s\n", jump ? "rewritten" : "not rewritten");
    return jump ? 0 : 1;
}
