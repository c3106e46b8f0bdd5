// Access to the application's memory from system calls. Every user pointer is checked to lie in
// the low half; a page that is not there yet is faulted in like any user access, and a real fault
// (no mapping) makes the copy fail with -EFAULT instead of crashing the kernel.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::linux {

// 0 or -EFAULT.
int copy_from_user(void* dst, uint64_t user_src, size_t size);
int copy_to_user(uint64_t user_dst, const void* src, size_t size);
int clear_user(uint64_t user_dst, size_t size);

// Copies a NUL-terminated string of at most `capacity - 1` characters. Returns its length,
// -EFAULT, or -ENAMETOOLONG.
int64_t copy_string_from_user(char* dst, uint64_t user_src, size_t capacity);

template <typename T>
int get_user(T& out, uint64_t user_src) {
    return copy_from_user(&out, user_src, sizeof(T));
}
template <typename T>
int put_user(uint64_t user_dst, const T& value) {
    return copy_to_user(user_dst, &value, sizeof(T));
}

}  // namespace kiln::linux
