#include "devices/control_port.h"

#include <cerrno>
#include <cstring>

namespace kiln::vmm {

void ControlPort::read(uint16_t, std::span<uint8_t> data) {
    // Reads return a fixed signature so a guest can tell kiln-vmm is there.
    constexpr uint8_t kSignature[4] = {'K', 'i', 'l', 'n'};
    for (size_t i = 0; i < data.size(); ++i) data[i] = i < 4 ? kSignature[i] : 0;
}

void ControlPort::write(uint16_t offset, std::span<const uint8_t> data) {
    ++calls_;
    if (offset != 0 || data.size() != 4) {  // only a 32-bit `out` to the base port is a call
        ++rejected_;
        return;
    }
    uint32_t gpa;
    std::memcpy(&gpa, data.data(), 4);
    std::span<uint8_t> block = memory_.span(gpa, sizeof(abi::Hostcall));
    if (block.empty() || gpa % 8 != 0) {
        ++rejected_;
        return;
    }
    abi::Hostcall call;
    std::memcpy(&call, block.data(), sizeof(call));  // one copy: the guest may change it meanwhile
    const int32_t result = handle(call);
    if (result < 0) ++rejected_;
    std::memcpy(block.data() + offsetof(abi::Hostcall, result), &result, sizeof(result));
}

int32_t ControlPort::handle(const abi::Hostcall& call) {
    switch (static_cast<abi::HostcallOp>(call.op)) {
        case abi::HostcallOp::kExit: listener_.guest_exited(static_cast<int>(call.arg0 & 0xff)); return 0;
        case abi::HostcallOp::kPanic: listener_.guest_panicked(); return 0;
        case abi::HostcallOp::kConsoleWrite: {
            if (call.arg1 > abi::kMaxConsoleWrite) return -EINVAL;
            std::span<uint8_t> text = memory_.span(call.arg0, call.arg1);
            if (text.empty() && call.arg1 != 0) return -EFAULT;
            console_.write(text);
            return 0;
        }
        case abi::HostcallOp::kReady:
            if (call.arg1 > 0xffff) return -EINVAL;
            listener_.guest_ready(static_cast<uint32_t>(call.arg0), static_cast<uint32_t>(call.arg1));
            return 0;
        case abi::HostcallOp::kBootTimestamp:
            listener_.guest_boot_stage(static_cast<abi::BootStage>(call.arg0), call.arg1);
            return 0;
    }
    return -ENOSYS;
}

}  // namespace kiln::vmm
