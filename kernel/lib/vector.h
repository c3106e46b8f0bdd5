// A growable array on the kernel heap.
#pragma once

#include <stddef.h>

#include "core/panic.h"
#include "lib/utility.h"
#include "mm/heap.h"

namespace kiln {

template <typename T>
class Vector {
  public:
    Vector() = default;
    Vector(const Vector&) = delete;
    Vector& operator=(const Vector&) = delete;
    Vector(Vector&& other) noexcept
        : data_(exchange(other.data_, static_cast<T*>(nullptr))), size_(exchange(other.size_, size_t{0})),
          capacity_(exchange(other.capacity_, size_t{0})) {}
    Vector& operator=(Vector&& other) noexcept {
        if (this != &other) {
            clear();
            heap::free(data_);
            data_ = exchange(other.data_, static_cast<T*>(nullptr));
            size_ = exchange(other.size_, size_t{0});
            capacity_ = exchange(other.capacity_, size_t{0});
        }
        return *this;
    }
    ~Vector() {
        clear();
        heap::free(data_);
    }

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    T* data() { return data_; }
    const T* data() const { return data_; }
    T& operator[](size_t i) { return data_[i]; }
    const T& operator[](size_t i) const { return data_[i]; }
    T* begin() { return data_; }
    T* end() { return data_ + size_; }
    const T* begin() const { return data_; }
    const T* end() const { return data_ + size_; }
    T& back() { return data_[size_ - 1]; }

    // False if memory ran out (the vector is unchanged).
    [[nodiscard]] bool reserve(size_t capacity) {
        if (capacity <= capacity_) return true;
        T* fresh = static_cast<T*>(heap::allocate(capacity * sizeof(T)));
        if (fresh == nullptr) return false;
        for (size_t i = 0; i < size_; ++i) {
            new (&fresh[i]) T(move(data_[i]));
            data_[i].~T();
        }
        heap::free(data_);
        data_ = fresh;
        capacity_ = capacity;
        return true;
    }

    [[nodiscard]] bool push_back(T value) { return insert(size_, move(value)); }

    [[nodiscard]] bool insert(size_t index, T value) {
        if (size_ == capacity_ && !reserve(capacity_ == 0 ? 4 : capacity_ * 2)) return false;
        new (&data_[size_]) T(move(value));
        for (size_t i = size_; i > index; --i) {
            T tmp = move(data_[i]);
            data_[i] = move(data_[i - 1]);
            data_[i - 1] = move(tmp);
        }
        ++size_;
        return true;
    }

    void erase(size_t index) {
        for (size_t i = index; i + 1 < size_; ++i) data_[i] = move(data_[i + 1]);
        data_[--size_].~T();
    }

    void pop_back() { data_[--size_].~T(); }

    void clear() {
        while (size_ > 0) data_[--size_].~T();
    }

  private:
    T* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

}  // namespace kiln
