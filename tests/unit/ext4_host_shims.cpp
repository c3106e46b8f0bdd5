// What the kernel's ext4 needs from the rest of the kernel, for its host build: the heap, user
// copies (every buffer here is the test's), the wall clock.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cstddef>

namespace kiln {
namespace heap {
void* allocate(size_t size) { return malloc(size); }
void free(void* p) { ::free(p); }
}  // namespace heap
namespace linux {
int copy_to_user(uint64_t dst, const void* src, size_t size) {
    memcpy(reinterpret_cast<void*>(dst), src, size);
    return 0;
}
int copy_from_user(void* dst, uint64_t src, size_t size) {
    memcpy(dst, reinterpret_cast<const void*>(src), size);
    return 0;
}
}  // namespace linux
namespace time {
uint64_t realtime_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace time
}  // namespace kiln
