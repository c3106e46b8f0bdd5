// The kernel heap: size classes of 16..2048 bytes carved from single pages, and whole pages from the
// page allocator for anything larger. Every block carries a 16-byte header, so `free` needs no
// size and alignment is 16 bytes.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::heap {

void* allocate(size_t size);
void free(void* p);

struct Stats {
    size_t small_blocks_in_use;
    size_t large_pages_in_use;
};
Stats stats();

}  // namespace kiln::heap
