// A kernel image in ELF64 form, parsed and checked before anything is copied into the guest.
//
// Every offset, size and address in the file is validated against the file and against itself
// (overflow, overlap, W+X), so a truncated or garbage image is refused with a message that says
// what is wrong, never loaded half-way.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kiln::vmm {

struct ElfSegment {
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t phys_addr;
    uint64_t mem_size;
    bool executable;
    bool writable;
};

class ElfImage {
  public:
    // Throws VmmError naming `name` and the defect.
    static ElfImage parse(std::span<const uint8_t> file, const std::string& name);

    const std::vector<ElfSegment>& segments() const { return segments_; }
    // Entry points announced by ELF notes, as physical addresses.
    std::optional<uint32_t> pvh_entry32() const { return pvh_entry32_; }
    std::optional<uint64_t> kiln_entry64() const { return kiln_entry64_; }
    // The proc build's entry (abi/kiln/proc.h), a virtual address: kiln-proc jumps to it.
    std::optional<uint64_t> proc_entry() const { return proc_entry_; }
    // The highest physical address a segment occupies (exclusive).
    uint64_t phys_end() const;
    std::span<const uint8_t> file() const { return file_; }

  private:
    std::span<const uint8_t> file_;
    std::vector<ElfSegment> segments_;
    std::optional<uint32_t> pvh_entry32_;
    std::optional<uint64_t> kiln_entry64_;
    std::optional<uint64_t> proc_entry_;
};

}  // namespace kiln::vmm
