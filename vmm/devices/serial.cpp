#include "devices/serial.h"

namespace kiln::vmm {
namespace {

enum Register : uint16_t {
    kData = 0,             // THR/RBR, or divisor low with DLAB
    kInterruptEnable = 1,  // or divisor high with DLAB
    kInterruptId = 2,
    kLineControl = 3,
    kModemControl = 4,
    kLineStatus = 5,
    kModemStatus = 6,
    kScratch = 7,
};

constexpr uint8_t kLineStatusIdle = 0x60;  // transmitter holding register and shifter empty
constexpr uint8_t kNoInterruptPending = 0x01;
constexpr size_t kMaxPending = 4096;

}  // namespace

void Serial::read(uint16_t offset, std::span<uint8_t> data) {
    if (data.empty()) return;
    uint8_t value = 0;
    switch (offset) {
        case kData: value = divisor_latch() ? static_cast<uint8_t>(divisor_) : 0; break;
        case kInterruptEnable: value = divisor_latch() ? static_cast<uint8_t>(divisor_ >> 8) : interrupt_enable_; break;
        case kInterruptId: value = kNoInterruptPending; break;
        case kLineControl: value = line_control_; break;
        case kModemControl: value = modem_control_; break;
        case kLineStatus: value = kLineStatusIdle; break;
        case kModemStatus: value = 0xb0; break;  // CTS, DSR, DCD
        case kScratch: value = scratch_; break;
        default: break;
    }
    data[0] = value;
    for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void Serial::write(uint16_t offset, std::span<const uint8_t> data) {
    if (data.empty()) return;
    const uint8_t value = data[0];
    switch (offset) {
        case kData:
            if (divisor_latch()) {
                divisor_ = static_cast<uint16_t>((divisor_ & 0xff00) | value);
                break;
            }
            if (value == '\r') break;  // the kernel sends CRLF for terminals; files want LF
            pending_.push_back(value);
            if (value == '\n' || pending_.size() >= kMaxPending) flush();
            break;
        case kInterruptEnable:
            if (divisor_latch())
                divisor_ = static_cast<uint16_t>((divisor_ & 0x00ff) | (value << 8));
            else
                interrupt_enable_ = value & 0x0f;
            break;
        case kLineControl: line_control_ = value; break;
        case kModemControl: modem_control_ = value & 0x1f; break;
        case kScratch: scratch_ = value; break;
        default: break;
    }
}

void Serial::flush() {
    if (pending_.empty()) return;
    output_.write(pending_);
    pending_.clear();
}

}  // namespace kiln::vmm
