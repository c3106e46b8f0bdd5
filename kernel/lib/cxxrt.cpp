// What a freestanding C++20 program needs from a runtime: global constructors, operator new and
// delete on the kernel heap, and the few ABI hooks the compiler references.
#include <stddef.h>

#include "core/panic.h"
#include "mm/heap.h"

extern "C" {
using Constructor = void (*)();
extern Constructor __init_array_start[];
extern Constructor __init_array_end[];

void* __dso_handle = nullptr;

// Destructors of globals never run: the kernel ends by powering the VM off.
int __cxa_atexit(void (*)(void*), void*, void*) { return 0; }
int atexit(void (*)()) { return 0; }

void __cxa_pure_virtual() { kiln::panic("pure virtual function called"); }

// One vCPU and no preemption of static initialisers yet, so a guard needs no lock.
int __cxa_guard_acquire(long long* guard) { return *reinterpret_cast<char*>(guard) == 0; }
void __cxa_guard_release(long long* guard) { *reinterpret_cast<char*>(guard) = 1; }
void __cxa_guard_abort(long long*) {}
}

namespace kiln {

void run_global_constructors() {
    for (Constructor* c = __init_array_start; c != __init_array_end; ++c) (*c)();
}

}  // namespace kiln

// The kernel is built without exceptions: allocation failure is fatal rather than std::bad_alloc.
void* operator new(size_t size) {
    void* p = kiln::heap::allocate(size);
    if (p == nullptr) kiln::panic("out of memory allocating {} bytes", size);
    return p;
}
void* operator new[](size_t size) { return operator new(size); }
void operator delete(void* p) noexcept { kiln::heap::free(p); }
void operator delete[](void* p) noexcept { kiln::heap::free(p); }
void operator delete(void* p, size_t) noexcept { kiln::heap::free(p); }
void operator delete[](void* p, size_t) noexcept { kiln::heap::free(p); }
