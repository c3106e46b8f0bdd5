#include "devices/serial.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace kiln::vmm {
namespace {

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

class SerialTest : public ::testing::Test {
  protected:
    void TearDown() override { ::unlink(path_.c_str()); }
    std::string path_ = ::testing::TempDir() + "/serial-" + std::to_string(::getpid());
};

TEST_F(SerialTest, WritesWholeLinesWithoutCarriageReturns) {
    {
        ConsoleOutput out(path_);
        Serial serial(out);
        for (char c : std::string("hi\r\nthere")) {
            const uint8_t b = static_cast<uint8_t>(c);
            serial.write(0, std::span(&b, 1));
        }
        EXPECT_EQ(slurp(path_), "hi\n");  // "there" waits for its newline
    }
    EXPECT_EQ(slurp(path_), "hi\nthere");  // flushed at teardown
}

TEST_F(SerialTest, ReportsAnIdleTransmitterAndKeepsTheDivisorApart) {
    ConsoleOutput out(path_);
    Serial serial(out);
    uint8_t value = 0;
    serial.read(5, std::span(&value, 1));
    EXPECT_EQ(value & 0x20, 0x20);
    const uint8_t dlab = 0x83, divisor = 0x0c, letter = 'x';
    serial.write(3, std::span(&dlab, 1));
    serial.write(0, std::span(&divisor, 1));  // divisor latch, not output
    serial.read(0, std::span(&value, 1));
    EXPECT_EQ(value, 0x0c);
    const uint8_t lcr = 0x03;
    serial.write(3, std::span(&lcr, 1));
    serial.write(0, std::span(&letter, 1));
    serial.flush();
    EXPECT_EQ(slurp(path_), "x");
    uint8_t wide[4] = {1, 2, 3, 4};
    serial.read(9, std::span(wide, 4));  // out-of-range offsets and widths are harmless
    serial.write(200, std::span<const uint8_t>(wide, 4));
}

}  // namespace
}  // namespace kiln::vmm
