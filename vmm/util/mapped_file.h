// A read-only file mapped into memory: kernel and initrd images are read from here without a
// copy until they are placed into guest memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace kiln::vmm {

class MappedFile {
  public:
    MappedFile() = default;
    // Throws VmmError("<what> <path>: <reason>").
    MappedFile(const std::string& path, const std::string& what);
    ~MappedFile();
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&& other) noexcept;
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    std::span<const uint8_t> bytes() const { return {data_, size_}; }

  private:
    uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace kiln::vmm
