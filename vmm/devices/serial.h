// A 16550A UART at COM1, transmit only: enough for a kernel's early messages. Every byte is an
// exit to kiln-vmm (~25 us on PVM), so output is gathered per line before it is written.
#pragma once

#include <cstdint>
#include <vector>

#include "devices/console_output.h"
#include "devices/io_bus.h"

namespace kiln::vmm {

class Serial final : public PioDevice {
  public:
    static constexpr uint16_t kCom1 = 0x3f8;
    static constexpr uint16_t kPorts = 8;

    explicit Serial(ConsoleOutput& output) : output_(output) {}
    ~Serial() override { flush(); }

    void read(uint16_t offset, std::span<uint8_t> data) override;
    void write(uint16_t offset, std::span<const uint8_t> data) override;
    void flush();

    struct State {
        uint8_t interrupt_enable, line_control, modem_control, scratch;
        uint16_t divisor;
    };
    State save() const { return {interrupt_enable_, line_control_, modem_control_, scratch_, divisor_}; }
    void restore(const State& s) {
        interrupt_enable_ = s.interrupt_enable;
        line_control_ = s.line_control;
        modem_control_ = s.modem_control;
        scratch_ = s.scratch;
        divisor_ = s.divisor;
    }

  private:
    bool divisor_latch() const { return (line_control_ & 0x80) != 0; }

    ConsoleOutput& output_;
    std::vector<uint8_t> pending_;
    uint8_t interrupt_enable_ = 0;
    uint8_t line_control_ = 0x03;
    uint8_t modem_control_ = 0;
    uint8_t scratch_ = 0;
    uint16_t divisor_ = 1;
};

}  // namespace kiln::vmm
