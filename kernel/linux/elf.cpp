#include "linux/elf.h"

namespace kiln::linux {
namespace {

template <typename T>
T load(const uint8_t* p) {
    T v;
    __builtin_memcpy(&v, p, sizeof(T));
    return v;
}

constexpr uint32_t kPtLoad = 1, kPtInterp = 3, kPtPhdr = 6, kPtGnuStack = 0x6474e551;
constexpr uint32_t kPfX = 1, kPfW = 2, kPfR = 4;
constexpr uint64_t kUserEnd = 0x0000800000000000;

bool fits(uint64_t offset, uint64_t length, uint64_t limit) { return offset <= limit && length <= limit - offset; }

}  // namespace

const char* describe(ElfError error) {
    switch (error) {
        case ElfError::kNone: return "ok";
        case ElfError::kTooShort: return "file too short for an ELF header";
        case ElfError::kNotElf: return "not an ELF file";
        case ElfError::kNot64Bit: return "not a 64-bit ELF file";
        case ElfError::kNotLittleEndian: return "not a little-endian ELF file";
        case ElfError::kNotX86_64: return "not an x86-64 program";
        case ElfError::kNotExecutable: return "not an executable";
        case ElfError::kBadInterpreter:
            return "its interpreter (PT_INTERP) is outside the file, empty, too long or not NUL-terminated";
        case ElfError::kBadProgramHeaders: return "program headers are outside the file (truncated?)";
        case ElfError::kBadSegment: return "a segment is outside the file or the application's address range";
        case ElfError::kTooManySegments: return "more than 16 loadable segments";
        case ElfError::kNoSegments: return "no loadable segment";
        case ElfError::kBadEntry: return "the entry point is outside the executable segments";
    }
    return "unknown error";
}

ElfError parse_app_elf(const uint8_t* data, size_t size, AppImage& out) {
    out = AppImage{};
    if (size < 64) return ElfError::kTooShort;
    if (!(data[0] == 0x7f && data[1] == 'E' && data[2] == 'L' && data[3] == 'F')) return ElfError::kNotElf;
    if (data[4] != 2) return ElfError::kNot64Bit;
    if (data[5] != 1) return ElfError::kNotLittleEndian;
    const uint16_t type = load<uint16_t>(data + 16);
    if (load<uint16_t>(data + 18) != 62) return ElfError::kNotX86_64;
    if (type != 2 && type != 3) return ElfError::kNotExecutable;
    const uint64_t entry = load<uint64_t>(data + 24);
    const uint64_t phoff = load<uint64_t>(data + 32);
    const uint16_t phentsize = load<uint16_t>(data + 54);
    const uint16_t phnum = load<uint16_t>(data + 56);
    if (phentsize != 56 || phnum == 0 || phnum > 128 || !fits(phoff, uint64_t{phnum} * 56, size))
        return ElfError::kBadProgramHeaders;

    out.position_independent = type == 3;
    out.entry = entry;
    out.phnum = phnum;
    bool have_phdr = false;
    for (uint16_t i = 0; i < phnum; ++i) {
        const uint8_t* ph = data + phoff + uint64_t{i} * 56;
        const uint32_t p_type = load<uint32_t>(ph);
        const uint32_t p_flags = load<uint32_t>(ph + 4);
        const uint64_t offset = load<uint64_t>(ph + 8);
        const uint64_t vaddr = load<uint64_t>(ph + 16);
        const uint64_t filesz = load<uint64_t>(ph + 32);
        const uint64_t memsz = load<uint64_t>(ph + 40);
        if (p_type == kPtInterp) {
            // The path with its NUL, as Linux's binfmt_elf requires; PATH_MAX at most.
            if (filesz < 2 || filesz > 4096 || !fits(offset, filesz, size) || data[offset + filesz - 1] != 0)
                return ElfError::kBadInterpreter;
            out.interp_offset = offset;
            out.interp_size = __builtin_strlen(reinterpret_cast<const char*>(data + offset));
            if (out.interp_size == 0) return ElfError::kBadInterpreter;
        }
        if (p_type == kPtPhdr) {
            out.phdr_vaddr = vaddr;
            have_phdr = true;
        }
        if (p_type == kPtGnuStack) out.stack_prot = (p_flags & kPfX) ? 7 : 3;
        if (p_type != kPtLoad || memsz == 0) continue;
        if (!fits(offset, filesz, size) || filesz > memsz || !fits(vaddr, memsz, kUserEnd) ||
            (vaddr % 4096) != (offset % 4096))
            return ElfError::kBadSegment;
        if (out.segment_count == AppImage::kMaxSegments) return ElfError::kTooManySegments;
        uint32_t prot = 0;
        if (p_flags & kPfR) prot |= 1;
        if (p_flags & kPfW) prot |= 2;
        if (p_flags & kPfX) prot |= 4;
        out.segments[out.segment_count++] = {vaddr, offset, filesz, memsz, prot};
        // Without PT_PHDR, the headers are where the segment holding them is loaded.
        if (!have_phdr && phoff >= offset && phoff + uint64_t{phnum} * 56 <= offset + filesz)
            out.phdr_vaddr = vaddr + (phoff - offset);
    }
    if (out.segment_count == 0) return ElfError::kNoSegments;
    bool entry_ok = false;
    for (size_t i = 0; i < out.segment_count; ++i) {
        const ElfSegment& s = out.segments[i];
        if ((s.prot & 4) && entry >= s.vaddr && entry < s.vaddr + s.mem_size) entry_ok = true;
    }
    if (!entry_ok) return ElfError::kBadEntry;
    return ElfError::kNone;
}

uint64_t AppImage::lowest_page() const {
    uint64_t low = ~uint64_t{0};
    for (size_t i = 0; i < segment_count; ++i) low = segments[i].vaddr < low ? segments[i].vaddr : low;
    return low & ~uint64_t{4095};
}

uint64_t AppImage::highest_page_end() const {
    uint64_t high = 0;
    for (size_t i = 0; i < segment_count; ++i) {
        const uint64_t end = segments[i].vaddr + segments[i].mem_size;
        high = end > high ? end : high;
    }
    return (high + 4095) & ~uint64_t{4095};
}

}  // namespace kiln::linux
