// Sole ownership of a heap object, like std::unique_ptr.
#pragma once

#include "lib/utility.h"

namespace kiln {

template <typename T>
class OwnPtr {
  public:
    OwnPtr() = default;
    explicit OwnPtr(T* p) : p_(p) {}
    OwnPtr(OwnPtr&& other) noexcept : p_(exchange(other.p_, static_cast<T*>(nullptr))) {}
    template <typename U>
    OwnPtr(OwnPtr<U>&& other) noexcept : p_(other.release()) {}
    OwnPtr& operator=(OwnPtr&& other) noexcept {
        if (this != &other) {
            delete p_;
            p_ = exchange(other.p_, static_cast<T*>(nullptr));
        }
        return *this;
    }
    OwnPtr(const OwnPtr&) = delete;
    OwnPtr& operator=(const OwnPtr&) = delete;
    ~OwnPtr() { delete p_; }

    T* get() const { return p_; }
    T* release() { return exchange(p_, static_cast<T*>(nullptr)); }
    T* operator->() const { return p_; }
    T& operator*() const { return *p_; }
    explicit operator bool() const { return p_ != nullptr; }

  private:
    T* p_ = nullptr;
};

template <typename T, typename... Args>
OwnPtr<T> make_own(Args&&... args) {
    return OwnPtr<T>(new T(forward<Args>(args)...));
}

}  // namespace kiln
