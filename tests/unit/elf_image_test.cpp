#include "boot/elf_image.h"

#include <gtest/gtest.h>

#include <functional>
#include <iterator>
#include <random>

#include "elf_builder.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace kiln::vmm {
namespace {

using test::build_elf;
using test::ElfSpec;

// Parses and returns the error message, or "" if the image was accepted.
std::string error_of(const std::vector<uint8_t>& bytes) {
    try {
        ElfImage::parse(bytes, "test.elf");
        return "";
    } catch (const VmmError& e) {
        return e.what();
    }
}

TEST(ElfImage, AcceptsAWellFormedImage) {
    const auto bytes = build_elf({});
    const ElfImage image = ElfImage::parse(bytes, "test.elf");
    ASSERT_EQ(image.segments().size(), 1u);
    EXPECT_EQ(image.segments()[0].phys_addr, 0x100000u);
    EXPECT_EQ(image.pvh_entry32(), 0x100000u);
    EXPECT_EQ(image.kiln_entry64(), 0x100010u);
    EXPECT_EQ(image.phys_end(), 0x100040u);
}

TEST(ElfImage, AcceptsTheRealKernel) {
    MappedFile file(KILN_KERNEL_IMAGE, "kernel image");
    const ElfImage image = ElfImage::parse(file.bytes(), KILN_KERNEL_IMAGE);
    EXPECT_TRUE(image.pvh_entry32().has_value());
    EXPECT_TRUE(image.kiln_entry64().has_value());
    EXPECT_GE(image.segments().size(), 3u);
}

TEST(ElfImage, RefusesEveryTruncationOfTheRealKernel) {
    MappedFile file(KILN_KERNEL_IMAGE, "kernel image");
    const auto all = file.bytes();
    // Every prefix shorter than the last segment's end must be refused: a truncated image is
    // never loaded half-way. Step through the sizes to keep the test fast.
    uint64_t needed = 0;
    const ElfImage whole = ElfImage::parse(all, "whole");
    for (const auto& s : whole.segments()) needed = std::max(needed, s.file_offset + s.file_size);
    for (size_t size = 0; size < needed; size += (size < 256 ? 1 : 509)) {
        std::vector<uint8_t> prefix(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(size));
        EXPECT_NE(error_of(prefix), "") << "accepted a " << size << "-byte prefix";
    }
}

TEST(ElfImage, RefusesRandomGarbage) {
    std::mt19937_64 random(42);
    for (int round = 0; round < 200; ++round) {
        std::vector<uint8_t> bytes(static_cast<size_t>(random() % 4096));
        for (auto& b : bytes) b = static_cast<uint8_t>(random());
        EXPECT_NE(error_of(bytes), "");
    }
}

TEST(ElfImage, SurvivesRandomCorruptionOfAValidImage) {
    // Flipped bytes may still leave a valid image; what matters is no crash and no bad read
    // (AddressSanitizer watches), and that accepted images still make sense.
    std::mt19937_64 random(7);
    const auto good = build_elf({});
    for (int round = 0; round < 2000; ++round) {
        auto bytes = good;
        for (int flips = 0; flips < 4; ++flips) bytes[random() % bytes.size()] = static_cast<uint8_t>(random());
        try {
            const ElfImage image = ElfImage::parse(bytes, "fuzzed.elf");
            for (const auto& s : image.segments()) EXPECT_LE(s.file_offset + s.file_size, bytes.size());
        } catch (const VmmError&) {
        }
    }
}

// Builds a valid image, lets `mutate` damage its ELF header or first program header, parses it.
std::string corrupt(const std::function<void(Elf64_Ehdr&, Elf64_Phdr&)>& mutate) {
    auto bytes = build_elf(ElfSpec{});
    auto* eh = reinterpret_cast<Elf64_Ehdr*>(bytes.data());
    auto* ph = reinterpret_cast<Elf64_Phdr*>(bytes.data() + test::kPhdrOffset);
    mutate(*eh, *ph);
    return error_of(bytes);
}

TEST(ElfImage, NamesEachDefect) {
    EXPECT_NE(error_of(std::vector<uint8_t>()).find("too short for an ELF header"), std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_ident[1] = 'X'; }).find("bad magic"), std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_ident[EI_CLASS] = ELFCLASS32; }).find("64-bit"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_machine = EM_AARCH64; }).find("x86-64"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_type = ET_DYN; }).find("not an executable"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_phoff = 1u << 30; }).find("program headers"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr& eh, Elf64_Phdr&) { eh.e_phnum = 0; }).find("program headers"), std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_filesz = 1u << 20; }).find("past the end"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_memsz = 1; }).find("larger than its memory"),
              std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_paddr = ~0ull - 8; }).find("wraps"), std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_paddr = 0x1000; }).find("below 1 MiB"), std::string::npos);
    EXPECT_NE(
        corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_flags = PF_R | PF_W | PF_X; }).find("writable and executable"),
        std::string::npos);
    EXPECT_NE(corrupt([](Elf64_Ehdr&, Elf64_Phdr& ph) { ph.p_type = PT_NULL; }).find("no loadable segment"),
              std::string::npos);
}

TEST(ElfImage, RefusesOverlappingSegments) {
    ElfSpec spec;
    spec.segments.push_back({0x100020, std::vector<uint8_t>(64, 0), 0, PF_R});
    EXPECT_NE(error_of(build_elf(spec)).find("overlap"), std::string::npos);
}

TEST(ElfImage, RefusesImagesWithoutAnEntryNote) {
    ElfSpec spec;
    spec.pvh_note = false;
    spec.kiln_note = false;
    EXPECT_NE(error_of(build_elf(spec)).find("no PVH entry note"), std::string::npos);
}

TEST(ElfImage, RefusesEntriesOutsideExecutableSegments) {
    ElfSpec spec;
    spec.kiln_entry = 0x200000;
    EXPECT_NE(error_of(build_elf(spec)).find("not inside an executable segment"), std::string::npos);
    spec = {};
    spec.segments[0].flags = PF_R;
    EXPECT_NE(error_of(build_elf(spec)).find("not inside an executable segment"), std::string::npos);
}

TEST(ElfImage, RefusesANoteThatRunsPastItsSegment) {
    auto bytes = build_elf({});
    auto* eh = reinterpret_cast<Elf64_Ehdr*>(bytes.data());
    auto* note_ph = reinterpret_cast<Elf64_Phdr*>(bytes.data() + eh->e_phoff) + 1;
    ASSERT_EQ(note_ph->p_type, static_cast<uint32_t>(PT_NOTE));
    // Claim a huge descriptor in the first note.
    auto* descsz = reinterpret_cast<uint32_t*>(bytes.data() + note_ph->p_offset + 4);
    *descsz = 0xfffffff0;
    EXPECT_NE(error_of(bytes).find("note runs past"), std::string::npos);
}

}  // namespace
}  // namespace kiln::vmm
