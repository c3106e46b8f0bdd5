// A minimal x86-64 ELF header with one program header of `type` (1 PT_LOAD, 3 PT_INTERP): what the
// image store takes for a program (its checks read no further).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace kiln::testing {

inline std::string fake_elf(uint32_t type = 1) {
    std::string elf(64 + 56, '\0');
    elf.replace(0, 4,
                "\x7f"
                "ELF");
    elf[4] = 2;    // 64-bit
    elf[5] = 1;    // little-endian
    elf[18] = 62;  // x86-64
    const uint64_t phoff = 64;
    std::memcpy(&elf[32], &phoff, 8);
    elf[54] = 56;  // phentsize
    elf[56] = 1;   // phnum
    std::memcpy(&elf[64], &type, 4);
    return elf;
}

}  // namespace kiln::testing
