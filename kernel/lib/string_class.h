// An owned, NUL-terminated string on the kernel heap.
#pragma once

#include "lib/string.h"
#include "lib/string_view.h"
#include "lib/utility.h"
#include "mm/heap.h"

namespace kiln {

class String {
  public:
    String() = default;
    explicit String(StringView text) { assign(text); }
    String(const String& other) { assign(other.view()); }
    String(String&& other) noexcept
        : data_(exchange(other.data_, static_cast<char*>(nullptr))), size_(exchange(other.size_, size_t{0})) {}
    String& operator=(const String& other) {
        if (this != &other) assign(other.view());
        return *this;
    }
    String& operator=(String&& other) noexcept {
        if (this != &other) {
            heap::free(data_);
            data_ = exchange(other.data_, static_cast<char*>(nullptr));
            size_ = exchange(other.size_, size_t{0});
        }
        return *this;
    }
    ~String() { heap::free(data_); }

    StringView view() const { return data_ ? StringView(data_, size_) : StringView(); }
    const char* c_str() const { return data_ ? data_ : ""; }
    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

  private:
    void assign(StringView text) {
        char* fresh = static_cast<char*>(heap::allocate(text.size() + 1));
        if (fresh == nullptr) return;  // stays as it was: callers check size() where it matters
        memcpy(fresh, text.data(), text.size());
        fresh[text.size()] = '\0';
        heap::free(data_);
        data_ = fresh;
        size_ = text.size();
    }
    char* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace kiln
