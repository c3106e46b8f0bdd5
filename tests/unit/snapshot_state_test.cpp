// The snapshot state file: what the writer produces reads back section by section, and every
// kind of damage is refused with a message that names the file and the defect.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "snapshot/state_file.h"
#include "util/error.h"

namespace kiln::vmm::snapshot {
namespace {

struct Record {
    uint64_t a;
    uint32_t b;
    uint32_t c;
};

std::vector<uint8_t> sample() {
    Writer w;
    w.add_object(Tag::kMachine, 0, Record{1, 2, 3});
    const std::vector<uint8_t> vcpu(300, 0xab);
    w.add(Tag::kVcpu, 0, vcpu.data(), vcpu.size());
    w.add(Tag::kVcpu, 1, vcpu.data(), 7);
    w.add(Tag::kListeners, 0, nullptr, 0);  // empty sections exist too
    return w.finish();
}

// The message of the VmmError that reading `bytes` throws; "" if it reads.
std::string refusal(std::vector<uint8_t> bytes) {
    try {
        Reader r(std::move(bytes), "/snap/state");
        return "";
    } catch (const VmmError& e) {
        return e.what();
    }
}

// Rewrites the trailing checksum (zlib's CRC-32 of everything before it, as the writer computes
// it) so that a change gets past the checksum to the structural checks behind it.
void reseal(std::vector<uint8_t>& bytes) {
    const auto sum = static_cast<uint32_t>(crc32(0, bytes.data(), static_cast<uInt>(bytes.size() - 4)));
    std::memcpy(bytes.data() + bytes.size() - 4, &sum, 4);
}

TEST(SnapshotState, ReadsBackWhatWasWritten) {
    const Reader r(sample(), "/snap/state");
    const auto record = r.get_object<Record>(Tag::kMachine);
    EXPECT_EQ(record.a, 1u);
    EXPECT_EQ(record.b, 2u);
    EXPECT_EQ(record.c, 3u);
    EXPECT_EQ(r.get(Tag::kVcpu, 0), std::vector<uint8_t>(300, 0xab));
    EXPECT_EQ(r.get(Tag::kVcpu, 1).size(), 7u);
    EXPECT_TRUE(r.has(Tag::kListeners));
    EXPECT_TRUE(r.get(Tag::kListeners).empty());
    EXPECT_FALSE(r.has(Tag::kClock));
}

TEST(SnapshotState, MissingOrMisSizedSectionsAreNamed) {
    const Reader r(sample(), "/snap/state");
    try {
        r.get(Tag::kClock);
        FAIL() << "a missing section was handed out";
    } catch (const VmmError& e) {
        EXPECT_NE(std::string(e.what()).find("snapshot /snap/state: section 5/0 is missing"), std::string::npos)
            << e.what();
    }
    try {
        r.get_object<uint64_t>(Tag::kMachine);
        FAIL() << "a section of the wrong size was read as an object";
    } catch (const VmmError& e) {
        EXPECT_NE(std::string(e.what()).find("wrong size"), std::string::npos) << e.what();
    }
}

TEST(SnapshotState, EveryFlippedByteIsCaught) {
    const auto good = sample();
    for (size_t i = 0; i < good.size(); ++i) {
        auto bad = good;
        bad[i] ^= 0x01;
        const std::string why = refusal(bad);
        EXPECT_FALSE(why.empty()) << "byte " << i << " changed unnoticed";
        EXPECT_NE(why.find("/snap/state"), std::string::npos) << why;
    }
}

TEST(SnapshotState, EveryTruncationIsCaught) {
    const auto good = sample();
    for (size_t size = 0; size < good.size(); ++size) {
        const std::string why = refusal(std::vector<uint8_t>(good.data(), good.data() + size));
        EXPECT_FALSE(why.empty()) << "a file cut to " << size << " bytes was read";
    }
    EXPECT_NE(refusal({good.begin(), good.begin() + 10}).find("truncated (10 bytes)"), std::string::npos);
}

TEST(SnapshotState, ForeignFilesAndOtherVersionsAreRefusedByName) {
    auto bad = sample();
    std::memcpy(bad.data(), "GARBAGE!", 8);
    EXPECT_NE(refusal(bad).find("not a Kiln snapshot"), std::string::npos);

    bad = sample();
    const uint32_t version = 99;
    std::memcpy(bad.data() + 8, &version, 4);
    EXPECT_NE(refusal(bad).find("snapshot version 99, this kiln-vmm reads version 1"), std::string::npos);
}

TEST(SnapshotState, LengthsThatLieAreRefusedEvenWithAGoodChecksum) {
    // A file whose checksum matches but whose structure is wrong: a writer's bug or a crafted file.
    auto bad = sample();
    uint32_t count = 99;
    std::memcpy(bad.data() + 12, &count, 4);
    reseal(bad);
    EXPECT_NE(refusal(bad).find("is truncated"), std::string::npos) << refusal(bad);

    bad = sample();
    const uint64_t huge = ~0ull;
    std::memcpy(bad.data() + 16 + 8, &huge, 8);  // the first section's length
    reseal(bad);
    EXPECT_NE(refusal(bad).find("section 0 runs past the end"), std::string::npos) << refusal(bad);

    bad = sample();
    count = 1;
    std::memcpy(bad.data() + 12, &count, 4);
    reseal(bad);
    EXPECT_NE(refusal(bad).find("trailing bytes"), std::string::npos) << refusal(bad);
}

}  // namespace
}  // namespace kiln::vmm::snapshot
