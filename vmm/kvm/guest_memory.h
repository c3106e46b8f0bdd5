// Guest RAM: one memfd, mapped once into kiln-vmm, registered with KVM as slot 0 at address 0.
//
// Every access from device models goes through span(), which checks the guest-supplied address
// and length, so that a hostile guest can only ever make its own device fail.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "host/unique_fd.h"

namespace kiln::vmm {

class GuestMemory {
  public:
    explicit GuestMemory(uint64_t size);
    // Guest memory from a snapshot's `memory` file, mapped MAP_PRIVATE: pages load on first touch
    // and instances restored from one file share its page cache until they write. Throws
    // VmmError if the file is not `size` bytes.
    GuestMemory(const std::string& path, uint64_t size);
    // Whether the memory is a memfd (its populated ranges can be found with SEEK_DATA).
    bool is_memfd() const { return memfd_; }
    ~GuestMemory();
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;

    uint64_t size() const { return size_; }
    uint8_t* host_base() const { return base_; }
    int fd() const { return fd_.get(); }

    // [gpa, gpa + length) if it lies inside guest memory; an empty span (and false from
    // contains()) otherwise.
    bool contains(uint64_t gpa, uint64_t length) const { return gpa <= size_ && length <= size_ - gpa; }
    std::span<uint8_t> span(uint64_t gpa, uint64_t length) const;

    // Copies into guest memory; throws VmmError if the range is outside it.
    void write(uint64_t gpa, std::span<const uint8_t> data);

    template <typename T>
    void write_object(uint64_t gpa, const T& value) {
        write(gpa, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }

  private:
    uint64_t size_;
    bool memfd_ = true;
    UniqueFd fd_;
    uint8_t* base_ = nullptr;
};

}  // namespace kiln::vmm
