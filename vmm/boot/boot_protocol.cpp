#include "boot/boot_protocol.h"

#include <cstring>

#include "boot/layout.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

// Linux's GDT layout: 0x08 kernel 32-bit code, 0x10 kernel 64-bit code, 0x18 kernel data,
// 0x23/0x2b/0x33 user, 0x40 TSS. The kernel loads its own copy; this one gets it started.
constexpr uint64_t kGdtEntries[8] = {
    0,
    0x00cf9a000000ffff,
    0x00af9a000000ffff,
    0x00cf92000000ffff,
    0x00cffa000000ffff,
    0x00cff2000000ffff,
    0x00affa000000ffff,
    0,
};
constexpr uint16_t kSelKernel32Cs = 0x08;
constexpr uint16_t kSelKernelCs = 0x10;
constexpr uint16_t kSelKernelDs = 0x18;
constexpr uint16_t kSelTss = 0x40;

kvm_segment code_segment(uint16_t selector, bool long_mode) {
    kvm_segment s{};
    s.base = 0;
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = 0xb;  // execute/read, accessed
    s.present = 1;
    s.s = 1;
    s.g = 1;
    s.l = long_mode ? 1 : 0;
    s.db = long_mode ? 0 : 1;
    return s;
}

kvm_segment data_segment(uint16_t selector) {
    kvm_segment s{};
    s.limit = 0xffffffff;
    s.selector = selector;
    s.type = 0x3;  // read/write, accessed
    s.present = 1;
    s.s = 1;
    s.g = 1;
    s.db = 1;
    return s;
}

void write_gdt(GuestMemory& memory, kvm_sregs& sregs, bool with_tss) {
    uint64_t gdt[10] = {};
    std::memcpy(gdt, kGdtEntries, sizeof(kGdtEntries));
    if (with_tss) {
        // A TSS whose RSP0 and IST1 point at mapped, writable memory, as in PVM's proven recipe.
        uint8_t tss[104] = {};
        const uint64_t stack = layout::kTssStackTop;
        std::memcpy(tss + 4, &stack, 8);   // RSP0
        std::memcpy(tss + 36, &stack, 8);  // IST1
        const uint16_t iomap = sizeof(tss);
        std::memcpy(tss + 102, &iomap, 2);
        memory.write(layout::kTss, tss);
        const uint64_t base = layout::kTss, limit = sizeof(tss) - 1;
        gdt[8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x8bull << 40) | (((base >> 24) & 0xff) << 56);
        gdt[9] = base >> 32;
        sregs.tr = {};
        sregs.tr.base = base;
        sregs.tr.limit = static_cast<uint32_t>(limit);
        sregs.tr.selector = kSelTss;
        sregs.tr.type = 0xb;  // busy 64-bit TSS
        sregs.tr.present = 1;
    }
    memory.write(layout::kGdt, std::span(reinterpret_cast<const uint8_t*>(gdt), sizeof(gdt)));
    sregs.gdt.base = layout::kGdt;
    sregs.gdt.limit = sizeof(gdt) - 1;
}

class Direct64Boot final : public BootProtocol {
  public:
    explicit Direct64Boot(uint64_t entry) : entry_(entry) {}
    const char* name() const override { return "direct64"; }

    void prepare(GuestMemory& memory, Vcpu& vcpu, const Kvm::CpuidTable& cpuid, uint64_t start_info) override {
        // Identity map of the low 1 GiB in 2 MiB pages. U/S=1 at every level: PVM's native mode
        // faults forever on a supervisor-only page (research/pvm.md, recipe 2).
        constexpr uint64_t kTable = 0x7;   // present, writable, user
        constexpr uint64_t kLarge = 0x87;  // + 2 MiB page
        memory.write_object(layout::kPml4, layout::kPdpt | kTable);
        memory.write_object(layout::kPdpt, layout::kPd | kTable);
        uint64_t pd[512];
        for (uint64_t i = 0; i < 512; ++i) pd[i] = (i << 21) | kLarge;
        memory.write(layout::kPd, std::span(reinterpret_cast<const uint8_t*>(pd), sizeof(pd)));

        kvm_sregs sregs = vcpu.sregs();
        write_gdt(memory, sregs, true);
        sregs.idt = {};
        sregs.cs = code_segment(kSelKernelCs, true);
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data_segment(kSelKernelDs);
        sregs.cr3 = layout::kPml4;
        sregs.cr0 = 0x80050033;  // PG AM WP NE ET MP PE, PVM's recipe
        constexpr uint64_t kCr4Pae = 1 << 5, kCr4Pge = 1 << 7, kCr4Osfxsr = 1 << 9, kCr4Osxmmexcpt = 1 << 10,
                           kCr4Osxsave = 1 << 18;
        sregs.cr4 = kCr4Pae | kCr4Pge | kCr4Osfxsr | kCr4Osxmmexcpt;
        // KVM refuses CR4.OSXSAVE unless the guest's CPUID offers XSAVE.
        if (const kvm_cpuid_entry2* leaf1 = cpuid.find(1); leaf1 && (leaf1->ecx & (1u << 26))) sregs.cr4 |= kCr4Osxsave;
        constexpr uint64_t kEferSce = 1, kEferLme = 1 << 8, kEferLma = 1 << 10, kEferNxe = 1 << 11;
        sregs.efer = kEferSce | kEferLme | kEferLma | kEferNxe;
        vcpu.set_sregs(sregs);

        kvm_regs regs{};
        regs.rip = entry_;
        regs.rbx = start_info;
        regs.rsp = layout::kTssStackTop;
        regs.rflags = 0x2;
        vcpu.set_regs(regs);
    }

  private:
    uint64_t entry_;
};

class PvhBoot final : public BootProtocol {
  public:
    explicit PvhBoot(uint32_t entry) : entry_(entry) {}
    const char* name() const override { return "pvh"; }

    void prepare(GuestMemory& memory, Vcpu& vcpu, const Kvm::CpuidTable&, uint64_t start_info) override {
        // 32-bit protected mode, paging off, flat segments, EBX = start_info.
        kvm_sregs sregs = vcpu.sregs();
        write_gdt(memory, sregs, false);
        sregs.cs = code_segment(kSelKernel32Cs, false);
        sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data_segment(kSelKernelDs);
        sregs.cr0 = 0x11;  // PE ET
        sregs.cr4 = 0;
        sregs.efer = 0;
        vcpu.set_sregs(sregs);

        kvm_regs regs{};
        regs.rip = entry_;
        regs.rbx = start_info;
        regs.rflags = 0x2;
        vcpu.set_regs(regs);
    }

  private:
    uint32_t entry_;
};

}  // namespace

std::unique_ptr<BootProtocol> make_boot_protocol(const ElfImage& kernel, BootMode mode) {
    if (kernel.proc_entry() && !kernel.kiln_entry64() && !kernel.pvh_entry32())
        throw VmmError("the kernel is the proc build (kiln-proc.elf): run it with kiln-proc");
    if (mode == BootMode::kDirect64 || (mode == BootMode::kAuto && kernel.kiln_entry64())) {
        if (!kernel.kiln_entry64()) throw VmmError("--boot direct64: the kernel has no Kiln 64-bit entry note");
        return std::make_unique<Direct64Boot>(*kernel.kiln_entry64());
    }
    if (!kernel.pvh_entry32()) throw VmmError("--boot pvh: the kernel has no PVH entry note");
    return std::make_unique<PvhBoot>(*kernel.pvh_entry32());
}

BootMode parse_boot_mode(const std::string& text) {
    if (text == "auto") return BootMode::kAuto;
    if (text == "direct64") return BootMode::kDirect64;
    if (text == "pvh") return BootMode::kPvh;
    throw VmmError("--boot: unknown protocol '" + text + "' (auto, direct64 or pvh)");
}

}  // namespace kiln::vmm
