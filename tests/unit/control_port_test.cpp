#include "devices/control_port.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace kiln::vmm {
namespace {

struct RecordingListener final : ControlPortListener {
    void guest_exited(int s) override { exit_status = s; }
    void guest_panicked() override { panicked = true; }
    void guest_ready(uint32_t p, uint32_t port) override { ready = {p, port}; }
    void guest_boot_stage(abi::BootStage s, uint64_t) override { stages.push_back(s); }
    int exit_status = -1;
    bool panicked = false;
    std::pair<uint32_t, uint32_t> ready{};
    std::vector<abi::BootStage> stages;
};

class ControlPortTest : public ::testing::Test {
  protected:
    ControlPortTest() : memory_(1 << 20), output_(path_), port_(memory_, output_, listener_) {}
    ~ControlPortTest() override { ::unlink(path_.c_str()); }

    // Places a call block at `gpa`, makes the 32-bit `out`, and returns the result field.
    int32_t call(abi::Hostcall block, uint64_t gpa = 0x8000) {
        memory_.write_object(gpa, block);
        const uint32_t value = static_cast<uint32_t>(gpa);
        port_.write(0, std::span(reinterpret_cast<const uint8_t*>(&value), 4));
        int32_t result;
        std::memcpy(&result, memory_.span(gpa + 4, 4).data(), 4);
        return result;
    }
    std::string console() {
        std::ifstream in(path_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    std::string path_ = ::testing::TempDir() + "/control-" + std::to_string(::getpid());
    GuestMemory memory_;
    ConsoleOutput output_;
    RecordingListener listener_;
    ControlPort port_;
};

constexpr uint32_t op(abi::HostcallOp o) { return static_cast<uint32_t>(o); }

TEST_F(ControlPortTest, WritesTheConsoleAndReportsExit) {
    const char text[] = "hello\n";
    memory_.write(0x9000, std::span(reinterpret_cast<const uint8_t*>(text), 6));
    EXPECT_EQ(call({op(abi::HostcallOp::kConsoleWrite), 1, 0x9000, 6, 0}), 0);
    EXPECT_EQ(console(), "hello\n");
    EXPECT_EQ(call({op(abi::HostcallOp::kExit), 1, 0x1ff, 0, 0}), 0);
    EXPECT_EQ(listener_.exit_status, 0xff);
    EXPECT_EQ(call({op(abi::HostcallOp::kReady), 1, 6, 8080, 0}), 0);
    EXPECT_EQ(listener_.ready, std::make_pair(6u, 8080u));
    EXPECT_EQ(call({op(abi::HostcallOp::kBootTimestamp), 1, 2, 123, 0}), 0);
    ASSERT_EQ(listener_.stages.size(), 1u);
    EXPECT_EQ(call({op(abi::HostcallOp::kPanic), 1, 0, 0, 0}), 0);
    EXPECT_TRUE(listener_.panicked);
}

TEST_F(ControlPortTest, RefusesHostileCalls) {
    EXPECT_EQ(call({op(abi::HostcallOp::kConsoleWrite), 1, (1 << 20) - 2, 6, 0}), -EFAULT);
    EXPECT_EQ(call({op(abi::HostcallOp::kConsoleWrite), 1, ~0ull - 2, 6, 0}), -EFAULT);
    EXPECT_EQ(call({op(abi::HostcallOp::kConsoleWrite), 1, 0x9000, 1 << 30, 0}), -EINVAL);
    EXPECT_EQ(call({op(abi::HostcallOp::kReady), 1, 6, 70000, 0}), -EINVAL);
    EXPECT_EQ(call({999, 1, 0, 0, 0}), -ENOSYS);
    EXPECT_EQ(console(), "");

    // A block outside memory, misaligned, or a call of the wrong width: ignored, counted.
    const uint64_t before = port_.rejected_calls();
    for (uint32_t gpa : {uint32_t{(1 << 20) - 8}, uint32_t{0xffffffff}, uint32_t{0x8004}}) {
        port_.write(0, std::span(reinterpret_cast<const uint8_t*>(&gpa), 4));
    }
    const uint8_t narrow = 1;
    port_.write(0, std::span(&narrow, 1));
    port_.write(2, std::span(&narrow, 1));
    EXPECT_EQ(port_.rejected_calls(), before + 5);
    EXPECT_EQ(listener_.exit_status, -1);
}

}  // namespace
}  // namespace kiln::vmm
