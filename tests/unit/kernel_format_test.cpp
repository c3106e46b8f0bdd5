#include "lib/format.h"

#include <gtest/gtest.h>

#include <string>

namespace kiln {
namespace {

template <typename... Args>
std::string fmt(const char* f, const Args&... args) {
    char buffer[128];
    const size_t n = format_buffer(buffer, sizeof(buffer), f, args...);
    return std::string(buffer, n);
}

TEST(KernelFormat, FormatsIntegersStringsAndPointers) {
    EXPECT_EQ(fmt("{} {} {}", 42, -7, 0u), "42 -7 0");
    EXPECT_EQ(fmt("{:x} {:#x} {:08x}", 255, 255, 0xbeef), "ff 0xff 0000beef");
    EXPECT_EQ(fmt("{:#018x}", 0x1234ull), "0x0000000000001234");
    EXPECT_EQ(fmt("[{:5}] [{:<5}]", 12, 12), "[   12] [12   ]");
    EXPECT_EQ(fmt("{} {}", "str", 'c'), "str c");
    EXPECT_EQ(fmt("{} {}", true, false), "true false");
    EXPECT_EQ(fmt("{}", INT64_MIN), "-9223372036854775808");
    EXPECT_EQ(fmt("{}", reinterpret_cast<void*>(0x1000)), "0x1000");
    EXPECT_EQ(fmt("{{}} {}", 1), "{} 1");
}

TEST(KernelFormat, SurvivesMismatchedArgumentsAndSmallBuffers) {
    EXPECT_EQ(fmt("{} {}", 1), "1 {?}");
    EXPECT_EQ(fmt("{", 1), "");
    char small[4];
    EXPECT_EQ(format_buffer(small, sizeof(small), "{}", 123456), 3u);
    EXPECT_STREQ(small, "123");
    EXPECT_EQ(fmt("{:99999999999999999999x}", 1).size(), 64u);  // widths are capped
}

}  // namespace
}  // namespace kiln
