#include "elf_builder.h"

#include <cstring>

#include "kiln/pvh.h"

namespace kiln::test {
namespace {

void append(std::vector<uint8_t>& out, const void* data, size_t size) {
    if (size == 0) return;
    const size_t at = out.size();
    out.resize(at + size);
    std::memcpy(out.data() + at, data, size);
}

void pad4(std::vector<uint8_t>& out) {
    while (out.size() % 4 != 0) out.push_back(0);
}

void note(std::vector<uint8_t>& out, const std::string& name, uint32_t type, const void* desc, uint32_t size) {
    const uint32_t header[3] = {static_cast<uint32_t>(name.size() + 1), size, type};
    append(out, header, sizeof(header));
    append(out, name.c_str(), name.size() + 1);
    pad4(out);
    append(out, desc, size);
    pad4(out);
}

}  // namespace

std::vector<uint8_t> build_elf(const ElfSpec& spec) {
    std::vector<uint8_t> notes;
    if (spec.pvh_note) note(notes, "Xen", abi::kXenElfNotePhys32Entry, &spec.pvh_entry, 4);
    if (spec.kiln_note) note(notes, "Kiln", abi::kKilnElfNoteEntry64, &spec.kiln_entry, 8);

    const size_t phnum = spec.segments.size() + (notes.empty() ? 0 : 1);
    size_t offset = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr);
    std::vector<Elf64_Phdr> phdrs;
    for (const auto& s : spec.segments) {
        Elf64_Phdr ph{};
        ph.p_type = PT_LOAD;
        ph.p_flags = s.flags;
        ph.p_offset = offset;
        ph.p_vaddr = ph.p_paddr = s.paddr;
        ph.p_filesz = s.data.size();
        ph.p_memsz = s.data.size() + s.extra_bss;
        ph.p_align = 0x1000;
        phdrs.push_back(ph);
        offset += s.data.size();
    }
    if (!notes.empty()) {
        Elf64_Phdr ph{};
        ph.p_type = PT_NOTE;
        ph.p_flags = PF_R;
        ph.p_offset = offset;
        ph.p_filesz = ph.p_memsz = notes.size();
        ph.p_align = 4;
        phdrs.push_back(ph);
    }

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = spec.kiln_entry;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(phnum);

    std::vector<uint8_t> out;
    append(out, &eh, sizeof(eh));
    for (const auto& ph : phdrs) append(out, &ph, sizeof(ph));
    for (const auto& s : spec.segments) append(out, s.data.data(), s.data.size());
    append(out, notes.data(), notes.size());
    return out;
}

}  // namespace kiln::test
