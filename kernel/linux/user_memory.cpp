#include "linux/user_memory.h"

#include "core/errno.h"
#include "lib/utility.h"
#include "mm/address_space.h"

extern "C" int user_copy(void* dst, const void* src, size_t n);
extern "C" int user_fill_zero(void* dst, size_t n);
extern "C" long user_string_copy(char* dst, const char* src, size_t capacity);

namespace kiln::linux {
namespace {

bool in_user_half(uint64_t address, size_t size) { return address < mm::kUserEnd && size <= mm::kUserEnd - address; }

}  // namespace

int copy_from_user(void* dst, uint64_t user_src, size_t size) {
    if (!in_user_half(user_src, size)) return -EFAULT;
    return user_copy(dst, reinterpret_cast<const void*>(user_src), size);
}

int copy_to_user(uint64_t user_dst, const void* src, size_t size) {
    if (!in_user_half(user_dst, size)) return -EFAULT;
    return user_copy(reinterpret_cast<void*>(user_dst), src, size);
}

int clear_user(uint64_t user_dst, size_t size) {
    if (!in_user_half(user_dst, size)) return -EFAULT;
    return user_fill_zero(reinterpret_cast<void*>(user_dst), size);
}

int64_t copy_string_from_user(char* dst, uint64_t user_src, size_t capacity) {
    if (capacity == 0 || user_src >= mm::kUserEnd) return -EFAULT;
    // Never read past the end of the user half, even if the string would continue.
    const size_t limit = min<uint64_t>(capacity, mm::kUserEnd - user_src);
    const long n = user_string_copy(dst, reinterpret_cast<const char*>(user_src), limit);
    if (n == -ENAMETOOLONG && limit < capacity) return -EFAULT;
    if (n >= 0) dst[n] = '\0';
    return n;
}

}  // namespace kiln::linux
