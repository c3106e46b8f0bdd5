// The pieces of <utility>, <new> and <type_traits> the kernel needs. The kernel is built with
// -nostdinc++: libstdc++'s headers assume a hosted runtime.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef KILN_HOSTED
#include <new>  // host builds of kernel code (fuzzers) take placement new from the C++ library
#else
inline void* operator new(size_t, void* where) noexcept { return where; }
inline void* operator new[](size_t, void* where) noexcept { return where; }
#endif

namespace kiln {

template <typename T>
struct RemoveReference {
    using Type = T;
};
template <typename T>
struct RemoveReference<T&> {
    using Type = T;
};
template <typename T>
struct RemoveReference<T&&> {
    using Type = T;
};

template <typename T>
constexpr typename RemoveReference<T>::Type&& move(T&& value) noexcept {
    return static_cast<typename RemoveReference<T>::Type&&>(value);
}

template <typename T>
constexpr T&& forward(typename RemoveReference<T>::Type& value) noexcept {
    return static_cast<T&&>(value);
}

template <typename T>
constexpr T exchange(T& target, T value) {
    T old = move(target);
    target = move(value);
    return old;
}

template <typename T>
constexpr const T& min(const T& a, const T& b) {
    return b < a ? b : a;
}
template <typename T>
constexpr const T& max(const T& a, const T& b) {
    return a < b ? b : a;
}

constexpr uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) & ~(alignment - 1); }
constexpr uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }

}  // namespace kiln
