// Futexes: threads waiting on a word of user memory.
#pragma once

#include <stdint.h>

namespace kiln::linux {

// Wakes up to `count` waiters on `address` whose bitset meets `bitset`. Returns how many.
int64_t futex_wake(uint64_t address, uint64_t count, uint32_t bitset = 0xffffffff);

}  // namespace kiln::linux
