// The platform layer: every privileged operation the kernel performs goes through here.
//
// Three backends: `hw` runs the plain instructions (VT-x/AMD-V, QEMU TCG); `pvm` runs on the PVM
// hypervisor's native mode, where the interrupt flag is a byte in a shared page and `cli`/`sti`
// are slow emulated no-ops (research/pvm.md); `proc` runs in a Linux process under kiln-proc,
// where interrupts are host signals and devices are host file descriptors (platform/proc/). The
// entry code decides which one applies before any C++ runs; the rest of the kernel never
// executes a privileged instruction itself.
#pragma once

#include <stdint.h>

namespace kiln::platform {

enum class Kind { kHw, kPvm, kProc };

class Backend {
  public:
    virtual const char* name() const = 0;
    virtual Kind kind() const = 0;

    // The interrupt flag, as the kernel sees it.
    virtual void irq_disable() = 0;
    virtual void irq_enable() = 0;
    virtual bool irq_enabled() const = 0;
    // Enables interrupts and waits for one. Returns with interrupts enabled.
    virtual void wait_for_interrupt() = 0;

    virtual uint64_t read_msr(uint32_t msr);
    virtual void write_msr(uint32_t msr, uint64_t value);
    virtual void load_page_table(uint64_t pml4_phys);
    virtual void flush_tlb_page(uintptr_t va);
    virtual uint64_t fault_address();  // CR2

    virtual void out8(uint16_t port, uint8_t value);
    virtual void out32(uint16_t port, uint32_t value);
    virtual uint8_t in8(uint16_t port);

    // Turns on what user code needs: SSE/AVX state (CR4.OSFXSR/OSXMMEXCPT/OSXSAVE, XCR0 on `hw`;
    // PVM fixes XCR0 itself) and FSGSBASE where the CPU has it. Returns the XCR0 in force.
    virtual uint64_t enable_user_features(bool xsave, uint64_t xcr0, bool fsgsbase);
    // The application's FS base (its thread pointer).
    virtual void set_fs_base(uint64_t base);
    // Supervisor-only kernel mappings where the platform allows it (not on PVM, whose native
    // mode needs U/S=1 everywhere the kernel runs).
    virtual bool kernel_pages_supervisor_only() const { return true; }

    // Descriptor tables: the event entry points of this CPU. load_gdt also reloads the segment
    // registers from the new table.
    virtual void load_gdt(const void* base, uint16_t limit);
    virtual void load_idt(const void* base, uint16_t limit);
    virtual void load_task_register(uint16_t selector);

    // The application's mappings where the host keeps them (proc): mm::AddressSpace's page
    // tables are the record, and every change to a present page is told here. `prot` is
    // mm::kProt* (Linux's PROT_* values). hw and pvm read the page tables and need nothing.
    virtual void user_pages_mapped(uint64_t /*va*/, uint64_t /*phys*/, uint64_t /*length*/, uint32_t /*prot*/) {}
    virtual void user_pages_protected(uint64_t, uint64_t, uint32_t) {}
    virtual void user_range_unmapped(uint64_t, uint64_t) {}
    // A part of the application's half that the kernel itself occupies (proc), which the
    // application may never map; false where the kernel lives in the upper half.
    virtual bool kernel_range_in_user_half(uint64_t&, uint64_t&) const { return false; }

    // The timer, the kernel's only clock event (the LAPIC's by default): one deadline in TSC
    // ticks, delivered as an interrupt on arch::kTimerVector.
    virtual void timer_init(uint64_t tsc_khz);
    virtual void timer_arm(uint64_t deadline_tsc);
    virtual void timer_disarm();
    virtual void end_of_interrupt();
    virtual const char* timer_description();

    // A network card of the backend's own (proc: the tap kiln-proc opened), attached to the
    // stack; false where the cards are virtio devices found on the command line.
    virtual bool start_network_device() { return false; }
    // The volumes as block devices of the backend's own (proc: the files kiln-proc opened),
    // registered with block::register_device in order; false where they are virtio devices found
    // on the command line.
    virtual bool start_block_devices() { return false; }
    // The backend's channel to its monitor, where pause and snapshot need the kernel's help
    // (proc: the kernel parks itself for kiln-proc); kiln-vmm does them from outside the VM.
    virtual void start_control_channel() {}

  protected:
    ~Backend() = default;
};

// Selects the backend boot.S found. Called once, first thing in kiln_start().
void init(Kind kind);
Backend& current();

// Short names for the hot operations.
inline void irq_disable() { current().irq_disable(); }
inline void irq_enable() { current().irq_enable(); }
inline bool irq_enabled() { return current().irq_enabled(); }

// Disables interrupts for a scope and restores the previous state.
class IrqGuard {
  public:
    IrqGuard() : was_enabled_(irq_enabled()) { irq_disable(); }
    ~IrqGuard() {
        if (was_enabled_) irq_enable();
    }
    IrqGuard(const IrqGuard&) = delete;
    IrqGuard& operator=(const IrqGuard&) = delete;

  private:
    bool was_enabled_;
};

}  // namespace kiln::platform
