#include "console/console.h"

#include "drivers/hostcall.h"
#include "drivers/uart16550.h"
#include "platform/platform.h"

namespace kiln::console {
namespace {

constinit Backend active = Backend::kUart;

// One line at a time through the control port: each flush is an exit to user space (~25 us).
constexpr size_t kLineCapacity = 1024;
constinit char line[kLineCapacity];
constinit size_t line_length = 0;

void flush_locked() {
    if (line_length == 0) return;
    if (active == Backend::kHostcall)
        hostcall::console_write(line, line_length);
    else
        uart16550::write(line, line_length);
    line_length = 0;
}

class ConsoleSink final : public Sink {
  public:
    void write(const char* data, size_t size) override { console::write(data, size); }
};
constinit ConsoleSink console_sink;

}  // namespace

void set_backend(Backend backend) {
    platform::IrqGuard guard;
    flush_locked();
    active = backend;
}

void write(const char* data, size_t size) {
    platform::IrqGuard guard;
    for (size_t i = 0; i < size; ++i) {
        line[line_length++] = data[i];
        if (data[i] == '\n' || line_length == kLineCapacity) flush_locked();
    }
}

void write_block(const char* data, size_t size) {
    platform::IrqGuard guard;
    flush_locked();
    if (active == Backend::kHostcall)
        hostcall::console_write(data, size);
    else
        uart16550::write(data, size);
}

void flush() {
    platform::IrqGuard guard;
    flush_locked();
}

Sink& sink() { return console_sink; }

}  // namespace kiln::console
