// Checks an application's ELF file before anything of it is mapped: static (ET_EXEC), static-pie
// and dynamic x86-64 executables, and the dynamic linker itself (ET_DYN, loaded at a base of the
// kernel's choosing). Freestanding; also built into the host unit tests, which feed it truncated
// and garbage files.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::linux {

struct ElfSegment {
    uint64_t vaddr;
    uint64_t file_offset;
    uint64_t file_size;
    uint64_t mem_size;
    uint32_t prot;  // mm::kProtRead | kProtWrite | kProtExec
};

struct AppImage {
    static constexpr size_t kMaxSegments = 16;
    bool position_independent = false;  // static-pie: loaded at a base of the kernel's choosing
    uint64_t entry = 0;
    uint64_t phdr_vaddr = 0;  // where the program headers are once loaded (AT_PHDR)
    uint16_t phnum = 0;
    ElfSegment segments[kMaxSegments];
    size_t segment_count = 0;
    uint64_t stack_prot = 3;  // PT_GNU_STACK
    // PT_INTERP: the dynamic linker's path, NUL-terminated inside the file; size 0 if static.
    uint64_t interp_offset = 0;
    uint64_t interp_size = 0;  // without the NUL
    bool dynamic() const { return interp_size != 0; }
    // The span of its loadable segments, page-aligned, before any base is added.
    uint64_t lowest_page() const;
    uint64_t highest_page_end() const;
};

enum class ElfError {
    kNone,
    kTooShort,
    kNotElf,
    kNot64Bit,
    kNotLittleEndian,
    kNotX86_64,
    kNotExecutable,
    kBadInterpreter,  // PT_INTERP outside the file, empty, too long or not NUL-terminated
    kBadProgramHeaders,
    kBadSegment,
    kTooManySegments,
    kNoSegments,
    kBadEntry,
};

const char* describe(ElfError error);

ElfError parse_app_elf(const uint8_t* data, size_t size, AppImage& out);

}  // namespace kiln::linux
