// The kernel's start_info parser, built for the host, fed good and hostile boot information.
#include "boot/boot_info.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "kiln/pvh.h"

namespace kiln {
namespace {

class FakeMemory final : public PhysicalMemory {
  public:
    explicit FakeMemory(size_t size) : bytes(size, 0) {}
    bool read(uint64_t phys, void* out, size_t size) const override {
        if (phys > bytes.size() || size > bytes.size() - phys) return false;
        std::memcpy(out, bytes.data() + phys, size);
        return true;
    }
    template <typename T>
    void put(uint64_t at, const T& value) {
        std::memcpy(bytes.data() + at, &value, sizeof(T));
    }
    std::vector<uint8_t> bytes;
};

constexpr uint64_t kInfo = 0x6000, kMemmap = 0x6200, kModules = 0x6100, kCmdline = 0x7000;

FakeMemory good_memory(const char* cmdline = "kiln.selftest=1") {
    FakeMemory m(0x10000);
    abi::StartInfo info{};
    info.magic = abi::kStartInfoMagic;
    info.version = 1;
    info.nr_modules = 1;
    info.modlist_paddr = kModules;
    info.cmdline_paddr = kCmdline;
    info.memmap_paddr = kMemmap;
    info.memmap_entries = 2;
    m.put(kInfo, info);
    m.put(kMemmap, abi::MemmapEntry{0, 0x100000, 2, 0});
    m.put(kMemmap + 24, abi::MemmapEntry{0x100000, 63 << 20, 1, 0});
    m.put(kModules, abi::ModlistEntry{0x3000000, 4096, 0, 0});
    std::memcpy(m.bytes.data() + kCmdline, cmdline, std::strlen(cmdline) + 1);
    return m;
}

TEST(BootInfo, ParsesWhatKilnVmmWrites) {
    auto m = good_memory();
    auto info = std::make_unique<BootInfo>();
    ASSERT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kNone);
    ASSERT_EQ(info->region_count, 2u);
    EXPECT_FALSE(info->regions[0].usable);
    EXPECT_TRUE(info->regions[1].usable);
    EXPECT_EQ(info->regions[1].size, 63u << 20);
    ASSERT_EQ(info->module_count, 1u);
    EXPECT_EQ(info->modules[0].base, 0x3000000u);
    EXPECT_STREQ(info->cmdline, "kiln.selftest=1");
    EXPECT_EQ(info->cmdline_length, 15u);
}

TEST(BootInfo, RefusesHostileStartInfo) {
    auto info = std::make_unique<BootInfo>();
    auto m = good_memory();
    EXPECT_EQ(parse_boot_info(m, 0xffffffffffff0000, *info), BootInfoError::kUnreadableStartInfo);
    EXPECT_EQ(parse_boot_info(m, m.bytes.size() - 8, *info), BootInfoError::kUnreadableStartInfo);

    m.put(kInfo, uint32_t{0x12345678});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kBadMagic);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, version), uint32_t{0});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kNoMemoryMap);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, memmap_entries), uint32_t{100000});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kTooManyRegions);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, memmap_paddr), uint64_t{0xfff0});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kUnreadableMemoryMap);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, nr_modules), uint32_t{9});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kTooManyModules);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, modlist_paddr), uint64_t{~0ull - 4});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kUnreadableModules);

    m = good_memory();
    m.put(kModules, abi::ModlistEntry{~0ull - 10, 4096, 0, 0});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kBadModule);

    m = good_memory();
    m.put(kInfo + offsetof(abi::StartInfo, cmdline_paddr), uint64_t{1} << 40);
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kUnreadableCmdline);
}

TEST(BootInfo, RefusesACommandLineWithoutAnEndInSight) {
    auto m = good_memory();
    std::memset(m.bytes.data() + kCmdline, 'x', 5000);  // no NUL within the limit
    auto info = std::make_unique<BootInfo>();
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kCmdlineTooLong);
    // A string that runs to the very end of memory without a NUL is unreadable, not a crash.
    std::memset(m.bytes.data() + 0xf000, 'y', 0x1000);
    m.put(kInfo + offsetof(abi::StartInfo, cmdline_paddr), uint64_t{0xf000});
    EXPECT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kUnreadableCmdline);
}

TEST(BootInfo, SkipsEmptyAndWrappingRegions) {
    auto m = good_memory();
    m.put(kMemmap, abi::MemmapEntry{0, 0, 1, 0});
    m.put(kMemmap + 24, abi::MemmapEntry{~0ull - 4096, 8192, 1, 0});
    auto info = std::make_unique<BootInfo>();
    ASSERT_EQ(parse_boot_info(m, kInfo, *info), BootInfoError::kNone);
    EXPECT_EQ(info->region_count, 0u);
}

}  // namespace
}  // namespace kiln
