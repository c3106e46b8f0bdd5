// The `state` file of a snapshot: a versioned, checksummed container of tagged sections.
//
//   "KILNSNAP" | u32 version | u32 section count | sections... | u32 CRC-32 of all before it
//   section:  u32 tag | u32 index | u64 length | bytes
//
// The reader checks every length against the file and the checksum before handing out a byte,
// so a truncated, corrupted or foreign file is refused with a message, never half-restored.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln::vmm::snapshot {

inline constexpr uint32_t kVersion = 1;

enum class Tag : uint32_t {
    kMachine = 1,  // MachineRecord
    kCpuid = 2,    // the kvm_cpuid2 table given to the vCPUs
    kVcpu = 3,     // index = vCPU number: VcpuState
    kIrqchip = 4,  // index = chip id: struct kvm_irqchip
    kClock = 5,    // struct kvm_clock_data
    kSerial = 6,
    kVirtio = 7,     // index = transport number: transport and queue registers
    kDevice = 8,     // index = transport number: the device model's own state
    kListeners = 9,  // (protocol, port) pairs the guest announced
    // kiln-proc's (proc/snapshot.cpp): its record, and the kernel's read-only ranges, which the
    // memory file holds but a restored instance maps from it read-only rather than copying.
    kProcMachine = 10,
    kProcReadOnly = 11,
    // Every virtio device's type (u32 each), in transport order: written always, read when the
    // machine record's eight do not hold them all (volumes).
    kVirtioTypes = 12,
    // kiln-proc's volumes (proc/snapshot.cpp): their sizes and read-only flags, checked on restore.
    kProcVolumes = 13,
};

class Writer {
  public:
    void add(Tag tag, uint32_t index, const void* data, size_t size);
    template <typename T>
    void add_object(Tag tag, uint32_t index, const T& value) {
        static_assert(std::is_trivially_copyable_v<T>);
        add(tag, index, &value, sizeof(T));
    }
    std::vector<uint8_t> finish() const;

  private:
    std::vector<uint8_t> body_;
    uint32_t sections_ = 0;
};

class Reader {
  public:
    // Throws VmmError("snapshot <name>: ...") on any defect.
    Reader(std::vector<uint8_t> bytes, const std::string& name);

    bool has(Tag tag, uint32_t index = 0) const;
    // The section's bytes; throws if missing.
    const std::vector<uint8_t>& get(Tag tag, uint32_t index = 0) const;
    template <typename T>
    T get_object(Tag tag, uint32_t index = 0) const {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto& bytes = get(tag, index);
        if (bytes.size() != sizeof(T))
            fail("section " + std::to_string(static_cast<uint32_t>(tag)) + " has the wrong size");
        T value;
        std::memcpy(&value, bytes.data(), sizeof(T));
        return value;
    }
    [[noreturn]] void fail(const std::string& why) const;

  private:
    std::string name_;
    std::map<std::pair<uint32_t, uint32_t>, std::vector<uint8_t>> sections_;
};

}  // namespace kiln::vmm::snapshot
