#include "linux/linux.h"

#include "arch/x86_64/interrupts.h"
#include "console/console.h"
#include "fs/devices.h"
#include "fs/ext4/file_system.h"
#include "fs/initrd.h"
#include "fs/vfs.h"
#include "linux/process.h"
#include "linux/signal.h"
#include "linux/syscall.h"
#include "mm/address_space.h"
#include "mm/layout.h"
#include "net/stack.h"

namespace kiln::linux {
namespace {

bool on_page_fault(uint64_t address, bool write, bool exec) {
    return mm::address_space().handle_fault(address, write, exec);
}

// A fault in the application becomes the signal Linux would send.
void on_user_exception(arch::InterruptFrame& frame, uint64_t fault_address) {
    SignalInfo info{kSigSegv, 1, fault_address};  // SEGV_MAPERR
    switch (frame.vector) {
        case 0: info = {kSigFpe, 1, frame.rip}; break;  // FPE_INTDIV
        case 1:
        case 3: info = {kSigTrap, 1, frame.rip}; break;
        case 6: info = {kSigIll, 2, frame.rip}; break;               // ILL_ILLOPN
        case 13: info = {kSigSegv, 128, 0}; break;                   // SI_KERNEL
        case 14: info.code = (frame.error_code & 1) ? 2 : 1; break;  // SEGV_ACCERR : SEGV_MAPERR
        case 16:
        case 19: info = {kSigFpe, 0, frame.rip}; break;
        case 17: info = {kSigBus, 1, fault_address}; break;
        default: break;
    }
    force_signal(info, frame);
}

}  // namespace

bool init(const Cmdline& cmdline, const BootInfo& boot_info) {
    mm::address_space().init();
    arch::set_page_fault_handler(on_page_fault);
    arch::set_user_exception_handler(on_user_exception);
    init_syscalls();
    fs::init();
    if (boot_info.module_count > 0) {
        const BootModule& initrd = boot_info.modules[0];
        if (initrd.base + initrd.size > mm::kDirectMapSize) {
            console::print("kiln: initrd at {:#x} lies beyond the direct map\n", initrd.base);
            return false;
        }
        if (!fs::unpack_initrd(static_cast<const uint8_t*>(mm::phys_to_virt(initrd.base)), initrd.size)) return false;
    }
    fs::create_device_nodes();
    if (!fs::ext4::mount_volumes(cmdline)) return false;
    return net::init(cmdline);
}

}  // namespace kiln::linux
