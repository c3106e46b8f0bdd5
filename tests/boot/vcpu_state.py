"""What a kiln-vmm snapshot says about vCPU 0 and the interrupt controllers, for a test's failure
message: where the guest was (RIP, interrupts on or off, halted), which vectors its local APIC
holds in service (ISR) or waiting (IRR), and the I/O APIC's device pins (vector, mask, pending).
A guest that stopped answering shows here whether an interrupt was lost on the way (nothing
pending anywhere), is stuck in the LAPIC (in IRR behind an ISR never ended) or was never asked for.

The layout is kiln-vmm's (vmm/snapshot/state_file.h, vmm/kvm/vcpu.cpp FixedState) over the
x86-64 KVM structures (linux/kvm.h).
"""
import struct
import subprocess
import zlib

_TAG_VCPU, _TAG_IRQCHIP = 3, 4
_IOAPIC_CHIP = 2
_LAPIC_AT = 848  # FixedState: kvm_regs 144, kvm_sregs 312, kvm_xcrs 392
_EVENTS_AT, _MP_STATE_AT = 1872, 1936
_MP_STATES = {0: "runnable", 3: "halted"}


def sections(path):
    """The state file's sections as {(tag, index): bytes}; ValueError if it is not one."""
    data = open(path, "rb").read()
    if data[:8] != b"KILNSNAP" or zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise ValueError(f"{path}: not a kiln-vmm state file")
    count = struct.unpack_from("<I", data, 12)[0]
    at, out = 16, {}
    for _ in range(count):
        tag, index, length = struct.unpack_from("<IIQ", data, at)
        out[(tag, index)] = data[at + 16:at + 16 + length]
        at += 16 + length
    return out


def _vectors(lapic, base):
    """The vectors set in a 256-bit LAPIC register (ISR, IRR, TMR): eight words, 16 bytes apart."""
    found = []
    for word in range(8):
        bits = struct.unpack_from("<I", lapic, base + 16 * word)[0]
        found += [32 * word + b for b in range(32) if bits >> b & 1]
    return found


_KERNEL_BASE = 0xffffffff80000000  # kernel/arch/x86_64/layout.h: virtual = physical + this


def kernel_variables(directory, kernel, names):
    """The bytes of the kernel's own variables (by symbol, demangled name ending in one of
    `names`) in a snapshot's raw memory file: {name: bytes}."""
    symbols = subprocess.run(["nm", "-C", "-S", kernel], capture_output=True, text=True).stdout
    found = {}
    with open(f"{directory}/memory", "rb") as memory:
        for line in symbols.splitlines():
            fields = line.split(maxsplit=3)
            if len(fields) < 4:
                continue
            for name in names:
                if fields[3].endswith("::" + name) or fields[3] == name:
                    memory.seek(int(fields[0], 16) - _KERNEL_BASE)
                    found[name] = memory.read(int(fields[1], 16))
    return found


def describe(state_path, kernel=None):
    """One paragraph on vCPU 0 and the interrupt controllers; the kernel's ELF names the RIP."""
    s = sections(state_path)
    vcpu = s[(_TAG_VCPU, 0)]
    rip, rflags = struct.unpack_from("<QQ", vcpu, 128)
    lapic = vcpu[_LAPIC_AT:_LAPIC_AT + 1024]
    tpr, ppr = struct.unpack_from("<I", lapic, 0x80)[0], struct.unpack_from("<I", lapic, 0xa0)[0]
    injected, nr = vcpu[_EVENTS_AT + 8], vcpu[_EVENTS_AT + 9]
    shadow = vcpu[_EVENTS_AT + 11]
    mp_state = struct.unpack_from("<I", vcpu, _MP_STATE_AT)[0]
    where = f"{rip:#x}"
    if kernel:
        named = subprocess.run(["addr2line", "-f", "-C", "-e", kernel, f"{rip:#x}"], capture_output=True, text=True)
        where += f" ({named.stdout.split(chr(10))[0]})" if named.returncode == 0 else ""
    lines = [f"vCPU 0: rip {where}, interrupts {'on' if rflags & 0x200 else 'off'}, "
             f"{_MP_STATES.get(mp_state, f'mp_state {mp_state}')}, interrupt shadow {shadow}, "
             f"injecting {f'vector {nr:#x}' if injected else 'nothing'}",
             f"LAPIC: ISR {[hex(v) for v in _vectors(lapic, 0x100)]}, IRR {[hex(v) for v in _vectors(lapic, 0x200)]}, "
             f"TPR {tpr:#x}, PPR {ppr:#x}"]
    chip = s.get((_TAG_IRQCHIP, _IOAPIC_CHIP))
    if chip:
        irr = struct.unpack_from("<I", chip, 8 + 16)[0]
        pins = []
        for pin in range(24):
            entry = struct.unpack_from("<Q", chip, 8 + 24 + 8 * pin)[0]
            vector, masked = entry & 0xff, entry >> 16 & 1
            if vector:
                level = "level" if entry >> 15 & 1 else "edge"
                pins.append(f"pin {pin} -> {vector:#x} {level}{' masked' if masked else ''}"
                            f"{' remote-irr' if entry >> 14 & 1 else ''}{' pending' if irr >> pin & 1 else ''}")
        lines.append("I/O APIC: " + ("; ".join(pins) or "no pin routed") + f"; irr {irr:#x}")
    return "\n".join(lines)
