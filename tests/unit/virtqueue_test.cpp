// kiln-vmm's split virtqueue against well-formed and hostile rings.
#include "devices/virtio/queue.h"

#include <gtest/gtest.h>

#include <cstring>

namespace kiln::vmm::virtio {
namespace {

namespace abi = kiln::abi::virtio;

class VirtqueueTest : public ::testing::Test {
  public:  // the table of hostile cases below calls the helpers
    static constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kData = 0x10000;
    static constexpr uint16_t kSize = 8;

    VirtqueueTest() : memory_(1 << 20) {
        queue_.size = kSize;
        queue_.desc_gpa = kDesc;
        queue_.avail_gpa = kAvail;
        queue_.used_gpa = kUsed;
        queue_.ready = true;
    }

    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
        memory_.write_object(kDesc + i * 16ull, abi::Descriptor{addr, len, flags, next});
    }
    void make_available(uint16_t head) {
        uint16_t idx;
        std::memcpy(&idx, memory_.span(kAvail + 2, 2).data(), 2);
        memory_.write_object(kAvail + 4 + 2ull * (idx % kSize), head);
        memory_.write_object(kAvail + 2, static_cast<uint16_t>(idx + 1));
    }
    uint16_t used_idx() {
        uint16_t v;
        std::memcpy(&v, memory_.span(kUsed + 2, 2).data(), 2);
        return v;
    }

    GuestMemory memory_;
    Queue queue_;
};

TEST_F(VirtqueueTest, PopsAChainAndReturnsIt) {
    ASSERT_TRUE(queue_.activate(memory_, true));
    set_desc(0, kData, 100, abi::kDescNext, 1);
    set_desc(1, kData + 100, 50, abi::kDescWrite, 0);
    make_available(0);
    auto chain = queue_.pop();
    ASSERT_TRUE(chain.has_value());
    EXPECT_EQ(chain->head, 0);
    EXPECT_EQ(chain->readable_bytes(), 100u);
    EXPECT_EQ(chain->writable_bytes(), 50u);
    EXPECT_EQ(chain->readable[0].iov_base, memory_.host_base() + kData);
    EXPECT_FALSE(queue_.pop().has_value());
    queue_.push(0, 50);
    EXPECT_EQ(used_idx(), 1);
    // The driver's used_event is 0: it wants an interrupt for entry 0.
    EXPECT_TRUE(queue_.needs_interrupt());
    EXPECT_FALSE(queue_.needs_interrupt());
}

TEST_F(VirtqueueTest, RefusesBadConfiguration) {
    queue_.size = 7;  // not a power of two
    EXPECT_FALSE(queue_.activate(memory_, false));
    queue_.size = kSize;
    queue_.used_gpa = (1 << 20) - 8;  // ring past the end of memory
    EXPECT_FALSE(queue_.activate(memory_, false));
    queue_.used_gpa = kUsed + 2;  // misaligned
    EXPECT_FALSE(queue_.activate(memory_, false));
    queue_.used_gpa = ~0ull - 4;
    EXPECT_FALSE(queue_.activate(memory_, false));
}

TEST_F(VirtqueueTest, AHostileChainBreaksTheQueueNotTheMonitor) {
    struct Case {
        const char* what;
        void (*setup)(VirtqueueTest&);
    };
    const Case cases[] = {
        {"loop",
         [](VirtqueueTest& t) {
             t.set_desc(0, kData, 8, abi::kDescNext, 0);
             t.make_available(0);
         }},
        {"address outside memory",
         [](VirtqueueTest& t) {
             t.set_desc(0, 1ull << 40, 8, 0, 0);
             t.make_available(0);
         }},
        {"length past the end",
         [](VirtqueueTest& t) {
             t.set_desc(0, (1 << 20) - 4, 8, 0, 0);
             t.make_available(0);
         }},
        {"wrapping address",
         [](VirtqueueTest& t) {
             t.set_desc(0, ~0ull - 2, 8, 0, 0);
             t.make_available(0);
         }},
        {"head beyond the table", [](VirtqueueTest& t) { t.make_available(200); }},
        {"next beyond the table",
         [](VirtqueueTest& t) {
             t.set_desc(0, kData, 8, abi::kDescNext, 99);
             t.make_available(0);
         }},
        {"readable after writable",
         [](VirtqueueTest& t) {
             t.set_desc(0, kData, 8, abi::kDescWrite | abi::kDescNext, 1);
             t.set_desc(1, kData, 8, 0, 0);
             t.make_available(0);
         }},
        {"indirect (not offered)",
         [](VirtqueueTest& t) {
             t.set_desc(0, kData, 16, abi::kDescIndirect, 0);
             t.make_available(0);
         }},
        {"index ran ahead", [](VirtqueueTest& t) { t.memory_.write_object(kAvail + 2, uint16_t{500}); }},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.what);
        GuestMemory fresh(1 << 20);
        memory_.write(0, std::span(fresh.host_base(), 1 << 20));  // a clean slate
        queue_.reset();
        queue_.size = kSize;
        queue_.desc_gpa = kDesc;
        queue_.avail_gpa = kAvail;
        queue_.used_gpa = kUsed;
        ASSERT_TRUE(queue_.activate(memory_, false));
        c.setup(*this);
        EXPECT_FALSE(queue_.pop().has_value());
        EXPECT_TRUE(queue_.broken());
        EXPECT_FALSE(queue_.pop().has_value());  // stays broken until reset
        // A device loop that re-enables notifications and looks again must not spin on it.
        EXPECT_FALSE(queue_.enable_notifications());
    }
}

TEST_F(VirtqueueTest, EventIndexSuppressesNotifications) {
    ASSERT_TRUE(queue_.activate(memory_, true));
    set_desc(0, kData, 8, 0, 0);
    make_available(0);
    // Buffers arrived while notifications were off: enabling reports them.
    EXPECT_TRUE(queue_.enable_notifications());
    ASSERT_TRUE(queue_.pop().has_value());
    EXPECT_FALSE(queue_.enable_notifications());
    uint16_t avail_event;
    std::memcpy(&avail_event, memory_.span(kUsed + 4 + 8 * kSize, 2).data(), 2);
    EXPECT_EQ(avail_event, 1);  // notify me when entry 1 shows up
    queue_.push(0, 0);
    memory_.write_object(kAvail + 4 + 2 * kSize, uint16_t{5});  // driver: interrupt at used 6
    EXPECT_FALSE(queue_.needs_interrupt());
}

TEST_F(VirtqueueTest, AnEmptyBufferIsLeftOutWhereverItPoints) {
    ASSERT_TRUE(queue_.activate(memory_, true));
    set_desc(0, kData, 10, abi::kDescNext, 1);
    set_desc(1, ~uint64_t{0} - 4, 0, abi::kDescNext | abi::kDescWrite, 2);  // empty, and nowhere
    set_desc(2, kData + 10, 20, abi::kDescWrite, 0);
    make_available(0);
    auto chain = queue_.pop();
    ASSERT_TRUE(chain.has_value());
    ASSERT_EQ(chain->readable.size(), 1u);
    ASSERT_EQ(chain->writable.size(), 1u);
    EXPECT_EQ(chain->writable[0].iov_base, memory_.host_base() + kData + 10);
    EXPECT_FALSE(queue_.broken());
    // Still, nothing readable may follow a writable buffer, empty or not.
    set_desc(3, kData, 0, abi::kDescNext | abi::kDescWrite, 4);
    set_desc(4, kData, 10, 0, 0);
    make_available(3);
    EXPECT_FALSE(queue_.pop().has_value());
    EXPECT_TRUE(queue_.broken());
}

TEST_F(VirtqueueTest, PositionsSayWhichSideAStalledQueueWaitsFor) {
    EXPECT_FALSE(queue_.positions().has_value());  // not active yet
    ASSERT_TRUE(queue_.activate(memory_, true));
    for (uint16_t i = 0; i < 2; ++i) {
        set_desc(i, kData + 8ull * i, 8, abi::kDescWrite, 0);
        make_available(i);
    }
    ASSERT_TRUE(queue_.pop().has_value());
    ASSERT_TRUE(queue_.pop().has_value());
    EXPECT_FALSE(queue_.enable_notifications());  // out of buffers: a kick is owed at entry 2
    queue_.push(0, 8);
    queue_.push(1, 8);
    memory_.write_object(kAvail + 4 + 2 * kSize, uint16_t{7});  // the driver's used_event
    const auto p = queue_.positions();
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->avail_idx, 2);
    EXPECT_EQ(p->last_avail, 2);
    EXPECT_EQ(p->avail_event, 2);
    EXPECT_EQ(p->used_idx, 2);
    EXPECT_EQ(p->last_signalled_used, 0);
    EXPECT_EQ(p->used_event, 7);
    EXPECT_FALSE(p->broken);
}

}  // namespace
}  // namespace kiln::vmm::virtio
