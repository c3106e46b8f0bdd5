// Shared ownership for kernel objects that derive from RefCounted (inodes, open files). Single
// vCPU and interrupt handlers never touch these, so the count is a plain integer.
#pragma once

#include "lib/utility.h"

namespace kiln {

class RefCounted {
  public:
    void ref() { ++count_; }
    // True when this was the last reference.
    bool unref() { return --count_ == 0; }
    uint32_t ref_count() const { return count_; }

  protected:
    RefCounted() = default;
    virtual ~RefCounted() = default;

  private:
    uint32_t count_ = 0;
    template <typename T>
    friend class RefPtr;
};

template <typename T>
class RefPtr {
  public:
    RefPtr() = default;
    RefPtr(decltype(nullptr)) {}
    explicit RefPtr(T* p) : p_(p) {
        if (p_) p_->ref();
    }
    RefPtr(const RefPtr& other) : RefPtr(other.p_) {}
    template <typename U>
    RefPtr(const RefPtr<U>& other) : RefPtr(other.get()) {}
    RefPtr(RefPtr&& other) noexcept : p_(exchange(other.p_, static_cast<T*>(nullptr))) {}
    RefPtr& operator=(RefPtr other) noexcept {
        T* tmp = p_;
        p_ = other.p_;
        other.p_ = tmp;
        return *this;
    }
    ~RefPtr() { reset(); }

    void reset() {
        if (p_ && p_->unref()) delete p_;
        p_ = nullptr;
    }
    T* get() const { return p_; }
    T* operator->() const { return p_; }
    T& operator*() const { return *p_; }
    explicit operator bool() const { return p_ != nullptr; }
    friend bool operator==(const RefPtr& a, const RefPtr& b) { return a.p_ == b.p_; }

  private:
    T* p_ = nullptr;
};

template <typename T, typename... Args>
RefPtr<T> make_ref(Args&&... args) {
    T* p = new T(forward<Args>(args)...);
    return RefPtr<T>(p);
}

}  // namespace kiln
