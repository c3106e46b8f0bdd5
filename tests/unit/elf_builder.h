// Builds small ELF64 kernel images in memory, valid by default, for the loader's tests to break.
#pragma once

#include <elf.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::test {

struct ElfSpec {
    struct Segment {
        uint64_t paddr = 0x100000;
        std::vector<uint8_t> data = std::vector<uint8_t>(64, 0x90);
        uint64_t extra_bss = 0;
        uint32_t flags = PF_R | PF_X;
    };
    std::vector<Segment> segments = {Segment{}};
    bool pvh_note = true;
    uint32_t pvh_entry = 0x100000;
    bool kiln_note = true;
    uint64_t kiln_entry = 0x100010;
};

std::vector<uint8_t> build_elf(const ElfSpec& spec);

// Offsets into an image from build_elf, for targeted corruption.
inline constexpr size_t kPhdrOffset = sizeof(Elf64_Ehdr);

}  // namespace kiln::test
