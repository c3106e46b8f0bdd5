// Memory-mapped I/O dispatch for KVM_EXIT_MMIO: each device claims a range of guest-physical
// addresses; accesses elsewhere read as zeros and are otherwise ignored.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::vmm {

class MmioDevice {
  public:
    virtual ~MmioDevice() = default;
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class MmioBus {
  public:
    void add(uint64_t base, uint64_t length, MmioDevice& device);
    bool read(uint64_t address, std::span<uint8_t> data);
    bool write(uint64_t address, std::span<const uint8_t> data);

  private:
    struct Range {
        uint64_t base;
        uint64_t length;
        MmioDevice* device;
    };
    const Range* find(uint64_t address, size_t size) const;
    std::vector<Range> ranges_;
};

}  // namespace kiln::vmm
