// kiln-vmm's virtio-blk device model (vmm/devices/virtio/block.cpp), one request at a time: what
// each request type does to the volume and to the guest's buffers, and what a bad one is refused
// with. The fuzz target (tests/fuzz/fuzz_virtio_block.cpp) covers malformed rings.
#include "devices/virtio/block.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "kvm/guest_memory.h"

namespace kiln::vmm::virtio {
namespace {

namespace abi = kiln::abi::virtio;

constexpr uint64_t kVolumeBytes = 64 * 512;

class VirtioBlockTest : public testing::Test {
  protected:
    VirtioBlockTest() : memory_(1 << 20) {
        fd_ = ::memfd_create("volume", MFD_CLOEXEC);
        EXPECT_EQ(::ftruncate(fd_, kVolumeBytes), 0);
        for (uint32_t i = 0; i < kVolumeBytes; ++i) {
            const auto byte = static_cast<uint8_t>(i * 13);
            EXPECT_EQ(::pwrite(fd_, &byte, 1, i), 1);
        }
    }
    ~VirtioBlockTest() override { ::close(fd_); }

    Block make(bool read_only) {
        VolumeFile file;
        file.fd.reset(::dup(fd_));
        file.bytes = kVolumeBytes;
        file.read_only = read_only;
        file.path = "test";
        return Block(std::move(file), 3);
    }

    iovec at(uint64_t gpa, size_t length) { return {memory_.span(gpa, length).data(), length}; }

    // A chain: the 16-byte header at 0, `data` bytes at 0x1000 (device-writable for IN and
    // GET_ID), the status byte at 0x100.
    uint8_t serve(Block& block, uint32_t type, uint64_t sector, size_t data, uint32_t& written) {
        const abi::BlockRequestHeader h{type, 0, sector};
        std::memcpy(memory_.span(0, sizeof(h)).data(), &h, sizeof(h));
        memory_.span(0x100, 1)[0] = 0xee;
        Chain chain{0, {at(0, sizeof(h))}, {}};
        const bool device_writes = type == abi::kBlockIn || type == abi::kBlockGetId;
        if (data > 0) (device_writes ? chain.writable : chain.readable).push_back(at(0x1000, data));
        chain.writable.push_back(at(0x100, 1));
        written = block.serve(chain);
        return memory_.span(0x100, 1)[0];
    }

    uint8_t* data() { return memory_.span(0x1000, 0x1000).data(); }

    GuestMemory memory_;
    int fd_ = -1;
};

TEST_F(VirtioBlockTest, OffersItsFeaturesAndCapacity) {
    Block rw = make(false), ro = make(true);
    EXPECT_TRUE(rw.features() & abi::kBlockFeatureFlush);
    EXPECT_TRUE(rw.features() & abi::kBlockFeatureSegMax);
    EXPECT_FALSE(rw.features() & abi::kBlockFeatureRo);
    EXPECT_TRUE(ro.features() & abi::kBlockFeatureRo);
    uint8_t config[16];
    rw.read_config(0, config);
    uint64_t capacity;
    uint32_t seg_max;
    std::memcpy(&capacity, config + abi::kBlockConfigCapacity, 8);
    std::memcpy(&seg_max, config + abi::kBlockConfigSegMax, 4);
    EXPECT_EQ(capacity, 64u);
    EXPECT_EQ(seg_max, Block::kSegMax);
}

TEST_F(VirtioBlockTest, ReadsWritesFlushesAndNamesItself) {
    Block block = make(false);
    uint32_t written = 0;
    EXPECT_EQ(serve(block, abi::kBlockIn, 2, 1024, written), abi::kBlockStatusOk);
    EXPECT_EQ(written, 1025u);
    for (uint32_t i = 0; i < 1024; ++i) ASSERT_EQ(data()[i], static_cast<uint8_t>((1024 + i) * 13)) << i;

    std::memset(data(), 0x5a, 512);
    EXPECT_EQ(serve(block, abi::kBlockOut, 63, 512, written), abi::kBlockStatusOk);
    EXPECT_EQ(written, 1u);
    uint8_t back[512];
    EXPECT_EQ(::pread(fd_, back, 512, 63 * 512), 512);
    for (uint8_t b : back) ASSERT_EQ(b, 0x5a);

    EXPECT_EQ(serve(block, abi::kBlockFlush, 0, 0, written), abi::kBlockStatusOk);
    EXPECT_EQ(serve(block, abi::kBlockGetId, 0, 20, written), abi::kBlockStatusOk);
    EXPECT_EQ(written, 21u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(data()), 9), "kiln-vol3");
    EXPECT_EQ(data()[9], 0);
}

TEST_F(VirtioBlockTest, RefusesWhatItCannotDo) {
    Block block = make(false), ro = make(true);
    uint32_t written = 0;
    EXPECT_EQ(serve(block, abi::kBlockIn, 63, 1024, written), abi::kBlockStatusIoErr);  // past the end
    EXPECT_EQ(written, 1u);
    EXPECT_EQ(serve(block, abi::kBlockIn, ~0ull, 512, written), abi::kBlockStatusIoErr);
    EXPECT_EQ(serve(block, abi::kBlockIn, 0, 100, written), abi::kBlockStatusIoErr);  // not whole sectors
    EXPECT_EQ(serve(block, abi::kBlockOut, 64, 512, written), abi::kBlockStatusIoErr);
    EXPECT_EQ(serve(ro, abi::kBlockOut, 0, 512, written), abi::kBlockStatusIoErr);  // read-only
    EXPECT_EQ(serve(ro, abi::kBlockIn, 0, 512, written), abi::kBlockStatusOk);
    EXPECT_EQ(serve(block, 11, 0, 0, written), abi::kBlockStatusUnsupported);  // DISCARD: not offered
    uint8_t first[512];
    EXPECT_EQ(::pread(fd_, first, 512, 0), 512);
    EXPECT_EQ(first[1], 13);  // nothing above wrote

    // No header, or no status byte at all.
    Chain headless{0, {at(0, 8)}, {at(0x100, 1)}};
    memory_.span(0x100, 1)[0] = 0xee;
    EXPECT_EQ(block.serve(headless), 1u);
    EXPECT_EQ(memory_.span(0x100, 1)[0], abi::kBlockStatusIoErr);
    Chain statusless{0, {at(0, 16)}, {}};
    EXPECT_EQ(block.serve(statusless), 0u);
}

}  // namespace
}  // namespace kiln::vmm::virtio
