// The kernel's cpio (newc) reader, built for the host, fed archives good, truncated and hostile.
#include "fs/cpio.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace kiln::fs {
namespace {

// `padding` NULs after the name's own: how writers start a file's data on a page boundary.
std::string entry(const std::string& name, uint32_t mode, const std::string& data, size_t padding = 0, uint32_t uid = 0,
                  uint32_t gid = 0) {
    char header[111];
    std::snprintf(header, sizeof(header), "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", 1u, mode, uid,
                  gid, 1u, 0u, static_cast<unsigned>(data.size()), 0u, 0u, 0u, 0u,
                  static_cast<unsigned>(name.size() + 1 + padding), 0u);
    std::string out = std::string(header, 110) + name + '\0' + std::string(padding, '\0');
    while (out.size() % 4) out += '\0';
    out += data;
    while (out.size() % 4) out += '\0';
    return out;
}

std::string trailer() { return entry("TRAILER!!!", 0, ""); }

std::vector<CpioEntry> read_all(const std::string& archive, CpioError& error) {
    CpioReader reader(reinterpret_cast<const uint8_t*>(archive.data()), archive.size());
    std::vector<CpioEntry> entries;
    CpioEntry e;
    while (reader.next(e)) entries.push_back(e);
    error = reader.error();
    return entries;
}

TEST(KernelCpio, ReadsEntriesUpToTheTrailer) {
    const std::string archive = entry("bin", 040755, "") + entry("bin/hello", 0100755, "ELF...") +
                                entry("etc/motd", 0100644, "hi\n") + trailer();
    CpioError error;
    auto entries = read_all(archive, error);
    EXPECT_EQ(error, CpioError::kNone);
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(std::string(entries[1].name.data(), entries[1].name.size()), "bin/hello");
    EXPECT_EQ(entries[1].mode, 0100755u);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(entries[2].data), entries[2].size), "hi\n");
}

TEST(KernelCpio, EntriesCarryTheirOwners) {
    const std::string archive = entry("home/app", 040750, "", 0, 1000, 1001) +
                                entry("srv/big", 0100600, "x", 0, 0xfffffffe, 70000) + entry("etc", 040755, "") +
                                trailer();
    CpioError error;
    auto entries = read_all(archive, error);
    EXPECT_EQ(error, CpioError::kNone);
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].uid, 1000u);
    EXPECT_EQ(entries[0].gid, 1001u);
    EXPECT_EQ(entries[1].uid, 0xfffffffeu);
    EXPECT_EQ(entries[1].gid, 70000u);
    EXPECT_EQ(entries[2].uid, 0u);
    EXPECT_EQ(entries[2].gid, 0u);
}

TEST(KernelCpio, NamesPaddedWithNulsPutDataOnAPage) {
    // 110 header bytes + "bin/hello\0" + 3976 NULs: the data starts at 4096.
    const std::string archive = entry("bin/hello", 0100755, std::string(5000, 'x'), 3976) + trailer();
    CpioError error;
    auto entries = read_all(archive, error);
    EXPECT_EQ(error, CpioError::kNone);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(std::string(entries[0].name.data(), entries[0].name.size()), "bin/hello");
    EXPECT_EQ(reinterpret_cast<const char*>(entries[0].data) - archive.data(), 4096);
    EXPECT_EQ(entries[0].size, 5000u);
}

TEST(KernelCpio, RefusesDamagedArchives) {
    const std::string good = entry("bin/hello", 0100755, std::string(1000, 'x')) + trailer();
    CpioError error;
    read_all("", error);
    EXPECT_EQ(error, CpioError::kMissingTrailer);
    read_all(good.substr(0, good.size() - 200), error);
    EXPECT_EQ(error, CpioError::kTruncated);
    read_all(good.substr(0, 50), error);
    EXPECT_EQ(error, CpioError::kTruncated);
    read_all("\x1f\x8b\x08" + good, error);
    EXPECT_EQ(error, CpioError::kCompressed);
    std::string bad = good;
    bad[3] = 'X';
    read_all(bad, error);
    EXPECT_EQ(error, CpioError::kBadMagic);
    bad = good;
    bad[20] = 'G';  // not hex
    read_all(bad, error);
    EXPECT_EQ(error, CpioError::kBadNumber);
    bad = good;
    bad.replace(54, 8, "FFFFFFF0");  // file size beyond the archive
    read_all(bad, error);
    EXPECT_EQ(error, CpioError::kTruncated);
    bad = good;
    bad.replace(94, 8, "00000000");  // empty name
    read_all(bad, error);
    EXPECT_EQ(error, CpioError::kBadName);
    bad = good;
    bad[112] = '\0';  // a NUL inside the name, more of the name after it
    read_all(bad, error);
    EXPECT_EQ(error, CpioError::kBadName);
    read_all(good.substr(0, good.size() - trailer().size()), error);
    EXPECT_EQ(error, CpioError::kMissingTrailer);
    EXPECT_STRNE(CpioReader::describe(CpioError::kTruncated), "");
}

TEST(KernelCpio, SurvivesRandomCorruption) {
    const std::string good = entry("a", 0100644, "data") + entry("b/c", 0100644, std::string(300, 'q')) + trailer();
    std::mt19937 random(11);
    for (int round = 0; round < 3000; ++round) {
        std::string bytes = good;
        for (int i = 0; i < 3; ++i) bytes[random() % bytes.size()] = static_cast<char>(random());
        CpioError error;
        for (const CpioEntry& e : read_all(bytes, error)) {
            // Whatever is accepted lies inside the archive.
            EXPECT_GE(reinterpret_cast<const char*>(e.data), bytes.data());
            EXPECT_LE(reinterpret_cast<const char*>(e.data) + e.size, bytes.data() + bytes.size());
        }
    }
}

}  // namespace
}  // namespace kiln::fs
