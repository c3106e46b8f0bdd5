#define _GNU_SOURCE
// Heap and mmap stress: many malloc sizes, big mmaps reserved and touched sparsely, munmap,
// mprotect, mremap, and a check of every byte.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CHECK(cond) do { if (!(cond)) { printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #cond); return 1; } } while (0)

int main(void) {
    enum { kBlocks = 4000 };
    static unsigned char* blocks[kBlocks];
    static size_t sizes[kBlocks];
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < kBlocks; ++i) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            sizes[i] = (i % 100 == 0) ? (x % (512 * 1024)) + 1 : (x % 2000) + 1;
            blocks[i] = malloc(sizes[i]);
            CHECK(blocks[i] != NULL);
            memset(blocks[i], (unsigned char)i, sizes[i]);
        }
        for (int i = 0; i < kBlocks; ++i) {
            for (size_t j = 0; j < sizes[i]; j += 97) CHECK(blocks[i][j] == (unsigned char)i);
            free(blocks[i]);
        }
    }
    // A 1 GiB reservation costs nothing until touched.
    size_t big = 1ul << 30;
    unsigned char* r = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(r != MAP_FAILED);
    CHECK(mprotect(r, 1 << 20, PROT_READ | PROT_WRITE) == 0);
    for (size_t i = 0; i < (1 << 20); i += 4096) r[i] = 7;
    CHECK(r[4096 * 3] == 7 && r[5] == 0);
    CHECK(munmap(r, big) == 0);

    unsigned char* m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    memset(m, 0x5a, 8192);
    m = mremap(m, 8192, 64 * 4096, MREMAP_MAYMOVE);
    CHECK(m != MAP_FAILED && m[8191] == 0x5a && m[8192] == 0);
    CHECK(madvise(m, 8192, MADV_DONTNEED) == 0 && m[0] == 0);
    CHECK(munmap(m, 64 * 4096) == 0);
    puts("malloc_stress: ok");
    return 0;
}
