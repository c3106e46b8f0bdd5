// Port I/O dispatch: each device claims a range of ports; accesses elsewhere read as all ones and
// are otherwise ignored, as on a PC with nothing at that address.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kiln::vmm {

class PioDevice {
  public:
    virtual ~PioDevice() = default;
    // `offset` is relative to the start of the device's range.
    virtual void read(uint16_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint16_t offset, std::span<const uint8_t> data) = 0;
};

class IoBus {
  public:
    void add(uint16_t base, uint16_t length, PioDevice& device);
    // Returns false if no device claims the port.
    bool read(uint16_t port, std::span<uint8_t> data);
    bool write(uint16_t port, std::span<const uint8_t> data);

  private:
    struct Range {
        uint16_t base;
        uint16_t length;
        PioDevice* device;
    };
    Range* find(uint16_t port);
    std::vector<Range> ranges_;
};

}  // namespace kiln::vmm
