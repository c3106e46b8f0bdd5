#include "boot/elf_image.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "kiln/proc.h"
#include "kiln/pvh.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

constexpr uint64_t kMinLoadAddress = 1 << 20;  // below 1 MiB lie kiln-vmm's boot structures
constexpr uint16_t kMaxProgramHeaders = 64;

template <typename T>
T read_at(std::span<const uint8_t> file, uint64_t offset) {
    T value;
    std::memcpy(&value, file.data() + offset, sizeof(T));
    return value;
}

bool range_in(uint64_t offset, uint64_t size, uint64_t limit) { return offset <= limit && size <= limit - offset; }

std::string hex(uint64_t v) {
    char text[24];
    std::snprintf(text, sizeof(text), "%#llx", static_cast<unsigned long long>(v));
    return text;
}

}  // namespace

ElfImage ElfImage::parse(std::span<const uint8_t> file, const std::string& name) {
    auto fail = [&name](const std::string& why) { return VmmError("invalid kernel image " + name + ": " + why); };

    if (file.size() < sizeof(Elf64_Ehdr))
        throw fail("file is " + std::to_string(file.size()) + " bytes, too short for an ELF header");
    const auto eh = read_at<Elf64_Ehdr>(file, 0);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) throw fail("not an ELF file (bad magic)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) throw fail("not a 64-bit ELF file");
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB) throw fail("not a little-endian ELF file");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT) throw fail("unknown ELF version");
    if (eh.e_machine != EM_X86_64) throw fail("not an x86-64 image (e_machine " + std::to_string(eh.e_machine) + ")");
    if (eh.e_type != ET_EXEC) throw fail("not an executable (e_type " + std::to_string(eh.e_type) + ")");
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) throw fail("program header size " + std::to_string(eh.e_phentsize));
    if (eh.e_phnum == 0 || eh.e_phnum > kMaxProgramHeaders)
        throw fail(std::to_string(eh.e_phnum) + " program headers (1 to 64 allowed)");
    if (!range_in(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), file.size()))
        throw fail("program headers run past the end of the file (truncated?)");

    ElfImage image;
    image.file_ = file;
    std::vector<Elf64_Phdr> notes;
    for (uint16_t i = 0; i < eh.e_phnum; ++i) {
        const auto ph = read_at<Elf64_Phdr>(file, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
        const std::string which = "segment " + std::to_string(i);
        if (ph.p_type == PT_NOTE) {
            if (!range_in(ph.p_offset, ph.p_filesz, file.size()))
                throw fail(which + " (note) runs past the end of the file");
            notes.push_back(ph);
            continue;
        }
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
        if (!range_in(ph.p_offset, ph.p_filesz, file.size()))
            throw fail(which + " runs past the end of the file (truncated?)");
        if (ph.p_filesz > ph.p_memsz) throw fail(which + " has a file size larger than its memory size");
        if (ph.p_paddr + ph.p_memsz < ph.p_paddr) throw fail(which + " wraps around the address space");
        if (ph.p_paddr < kMinLoadAddress) throw fail(which + " loads at " + hex(ph.p_paddr) + ", below 1 MiB");
        if ((ph.p_flags & PF_W) && (ph.p_flags & PF_X)) throw fail(which + " is both writable and executable");
        image.segments_.push_back(
            {ph.p_offset, ph.p_filesz, ph.p_paddr, ph.p_memsz, (ph.p_flags & PF_X) != 0, (ph.p_flags & PF_W) != 0});
    }
    if (image.segments_.empty()) throw fail("no loadable segment");

    auto sorted = image.segments_;
    std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.phys_addr < b.phys_addr; });
    for (size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i - 1].phys_addr + sorted[i - 1].mem_size > sorted[i].phys_addr)
            throw fail("segments overlap at " + hex(sorted[i].phys_addr));

    for (const auto& ph : notes) {
        uint64_t at = ph.p_offset;
        const uint64_t end = ph.p_offset + ph.p_filesz;
        while (end - at >= 12) {
            const auto namesz = read_at<uint32_t>(file, at);
            const auto descsz = read_at<uint32_t>(file, at + 4);
            const auto type = read_at<uint32_t>(file, at + 8);
            const uint64_t name_at = at + 12;
            const uint64_t desc_at = name_at + ((uint64_t{namesz} + 3) & ~3ull);
            const uint64_t next = desc_at + ((uint64_t{descsz} + 3) & ~3ull);
            if (next > end) throw fail("an ELF note runs past its segment");
            const std::string note_name(reinterpret_cast<const char*>(file.data() + name_at),
                                        namesz > 0 ? namesz - 1 : 0);
            if (note_name == "Xen" && type == abi::kXenElfNotePhys32Entry) {
                if (descsz < 4) throw fail("PVH entry note is too short");
                image.pvh_entry32_ = read_at<uint32_t>(file, desc_at);
            } else if (note_name == "Kiln" && type == abi::kKilnElfNoteEntry64) {
                if (descsz != 8) throw fail("Kiln entry note has the wrong size");
                image.kiln_entry64_ = read_at<uint64_t>(file, desc_at);
            } else if (note_name == "Kiln" && type == abi::kKilnElfNoteProcEntry) {
                if (descsz != 8) throw fail("Kiln proc entry note has the wrong size");
                image.proc_entry_ = read_at<uint64_t>(file, desc_at);
            }
            at = next;
        }
    }
    if (!image.pvh_entry32_ && !image.kiln_entry64_ && !image.proc_entry_)
        throw fail("no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) and no Kiln entry note: not a bootable kernel");

    auto executable_holds = [&image](uint64_t addr) {
        return std::any_of(image.segments_.begin(), image.segments_.end(), [addr](const ElfSegment& s) {
            return s.executable && addr >= s.phys_addr && addr < s.phys_addr + s.file_size;
        });
    };
    if (image.pvh_entry32_ && !executable_holds(*image.pvh_entry32_))
        throw fail("PVH entry " + hex(*image.pvh_entry32_) + " is not inside an executable segment");
    if (image.kiln_entry64_ && !executable_holds(*image.kiln_entry64_))
        throw fail("64-bit entry " + hex(*image.kiln_entry64_) + " is not inside an executable segment");
    if (image.proc_entry_ &&
        (*image.proc_entry_ < abi::kProcMemoryBase || !executable_holds(*image.proc_entry_ - abi::kProcMemoryBase)))
        throw fail("proc entry " + hex(*image.proc_entry_) + " is not inside an executable segment");
    return image;
}

uint64_t ElfImage::phys_end() const {
    uint64_t end = 0;
    for (const auto& s : segments_) end = std::max(end, s.phys_addr + s.mem_size);
    return end;
}

}  // namespace kiln::vmm
