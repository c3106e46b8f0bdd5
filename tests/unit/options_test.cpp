#include "options.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace kiln::vmm {
namespace {

TEST(MemorySize, AcceptsCommonSpellings) {
    EXPECT_EQ(parse_memory_size("64M", "--memory"), 64ull << 20);
    EXPECT_EQ(parse_memory_size("64m", "--memory"), 64ull << 20);
    EXPECT_EQ(parse_memory_size("64MiB", "--memory"), 64ull << 20);
    EXPECT_EQ(parse_memory_size("64", "--memory"), 64ull << 20);
    EXPECT_EQ(parse_memory_size("1G", "--memory"), 1ull << 30);
    EXPECT_EQ(parse_memory_size("65536K", "--memory"), 64ull << 20);
}

TEST(MemorySize, RefusesNonsenseWithTheFlagsName) {
    for (const char* bad : {"", "M", "-1", "12X", "1.5G", "99999999999999999999", "4T", "1025K7"}) {
        try {
            parse_memory_size(bad, "--memory");
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const VmmError& e) {
            EXPECT_NE(std::string(e.what()).find("--memory"), std::string::npos);
        }
    }
    EXPECT_THROW(parse_memory_size("4G", "--memory"), VmmError);     // above 3 GiB
    EXPECT_THROW(parse_memory_size("4097K", "--memory"), VmmError);  // not whole pages
}

TEST(BootModeTest, ParsesKnownProtocols) {
    EXPECT_EQ(parse_boot_mode("auto"), BootMode::kAuto);
    EXPECT_EQ(parse_boot_mode("pvh"), BootMode::kPvh);
    EXPECT_EQ(parse_boot_mode("direct64"), BootMode::kDirect64);
    EXPECT_THROW(parse_boot_mode("linux"), VmmError);
}

}  // namespace
}  // namespace kiln::vmm
