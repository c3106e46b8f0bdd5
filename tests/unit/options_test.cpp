#include "options.h"

#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kiln/hostcall.h"
#include "util/error.h"
#include "util/volume_file.h"

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

// A file of `bytes` zeros in the test's temporary directory.
std::string volume_file(const std::string& name, size_t bytes) {
    const std::string path = testing::TempDir() + "/options_test_" + name;
    std::filesystem::remove(path);
    std::ofstream(path).close();
    std::filesystem::resize_file(path, bytes);
    return path;
}

TEST(VolumeOption, ParsesPathAndReadOnly) {
    const std::string path = volume_file("plain.img", 1 << 20);
    const VolumeOptions v = parse_volume_option("path=" + path);
    EXPECT_EQ(v.path, path);
    EXPECT_FALSE(v.read_only);
    EXPECT_TRUE(parse_volume_option("path=" + path + ",ro").read_only);
    EXPECT_TRUE(parse_volume_option("ro,path=" + path).read_only);
}

TEST(VolumeOption, RefusesBadValuesWithTheFlagsName) {
    const std::string odd = volume_file("odd.img", 1000);
    const std::string dir = testing::TempDir();
    for (const std::string& bad :
         {std::string(""), std::string("ro"), std::string("path="), "path=" + dir,
          std::string("path=/nonexistent/volume.img"), "path=" + odd, "file=" + odd, "path=" + odd + ",rw"}) {
        try {
            parse_volume_option(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const VmmError& e) {
            EXPECT_NE(std::string(e.what()).find("--volume"), std::string::npos) << e.what();
        }
    }
}

TEST(VolumeOption, CommandLineKeepsTheOrderAndCountsThem) {
    const std::string a = volume_file("a.img", 4096), b = volume_file("b.img", 8192);
    std::vector<std::string> args = {"kiln-proc", "--volume", "path=" + a, "--volume", "path=" + b + ",ro"};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    const Options o = parse_options(static_cast<int>(argv.size()), argv.data(), Monitor::kProc);
    ASSERT_EQ(o.volumes.size(), 2u);
    EXPECT_EQ(o.volumes[0].path, a);
    EXPECT_FALSE(o.volumes[0].read_only);
    EXPECT_EQ(o.volumes[1].path, b);
    EXPECT_TRUE(o.volumes[1].read_only);
}

TEST(VolumeOptionDeathTest, MoreThanSixteenExitWithAUsageError) {
    const std::string a = volume_file("many.img", 4096);
    std::vector<std::string> args = {"kiln-proc"};
    for (size_t i = 0; i <= kMaxVolumes; ++i) {
        args.push_back("--volume");
        args.push_back("path=" + a + ",ro");
    }
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    EXPECT_EXIT(parse_options(static_cast<int>(argv.size()), argv.data(), Monitor::kProc),
                testing::ExitedWithCode(abi::kExitVmmError), "at most 16");
}

TEST(VolumeFile, LocksAgainstASecondWriter) {
    const std::string path = volume_file("locked.img", 1 << 20);
    VolumeFile first = open_volume({path, false});
    EXPECT_EQ(first.bytes, 1u << 20);
    try {
        open_volume({path, false});
        ADD_FAILURE() << "a second writer opened the volume";
    } catch (const VmmError& e) {
        EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
    }
    EXPECT_THROW(open_volume({path, true}), VmmError);  // a reader waits for the writer too
    first = {};
    VolumeFile reader = open_volume({path, true});
    VolumeFile another_reader = open_volume({path, true});  // readers share
    EXPECT_TRUE(another_reader.read_only);
    EXPECT_THROW(open_volume({path, false}), VmmError);
}

}  // namespace
}  // namespace kiln::vmm
