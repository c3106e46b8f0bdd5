#!/usr/bin/env python3
"""Boot tests: the real Kiln kernel under kiln-vmm (KVM) and under QEMU (KVM and TCG).

Every guest run has a timeout: a fault loop in PVM's native mode never ends by itself.
Usage: test_boot.py BUILD_DIR [unittest args, e.g. KilnVmmBoot QemuTcgBoot]
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

# The build directory: $KILN_BUILD_DIR (as CTest and scripts/with-kvm pass it), or argv[1].
BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
VMM = os.path.join(BUILD, "bin", "kiln-vmm")
KERNEL = os.path.join(BUILD, "kernel", "kiln.elf")
HELLO = "Hello from the Kiln kernel"
GUEST_TIMEOUT = float(os.environ.get("KILN_TEST_GUEST_TIMEOUT", "60"))

# Exit statuses of kiln-vmm (abi/kiln/hostcall.h).
EXIT_TIMEOUT, EXIT_VMM_ERROR, EXIT_GUEST_CRASH = 124, 125, 126


def run(cmd, timeout=GUEST_TIMEOUT):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def vmm(*args, timeout=GUEST_TIMEOUT):
    return run([VMM, "--kernel", KERNEL, "--timeout", str(timeout), *args], timeout=timeout + 30)


def kvm_usable():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    import fcntl
    try:
        vm = fcntl.ioctl(fd, 0xAE01, 0)  # KVM_CREATE_VM
        os.close(vm)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


QEMU_BASE = ["qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off", "-m", "64",
             "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
             "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", KERNEL]


def qemu(accel, append="", timeout=GUEST_TIMEOUT):
    cpu = ["-cpu", "max"] if accel == "tcg" else ["-cpu", "host,-arch-capabilities"]
    cmd = ["timeout", "-s", "KILL", str(timeout), *QEMU_BASE, "-accel", accel, *cpu]
    if append:
        cmd += ["-append", append]
    status, out, err = run(cmd, timeout=timeout + 30)
    return status, out.replace("\r\n", "\n"), err


class KilnVmmBoot(unittest.TestCase):
    """The Kiln kernel under kiln-vmm on a real /dev/kvm."""

    @classmethod
    def setUpClass(cls):
        if not kvm_usable():
            raise AssertionError("no usable /dev/kvm here: run this suite through scripts/with-kvm")

    def test_boots_prints_a_line_and_exits_zero(self):
        status, out, err = vmm()
        self.assertEqual(status, 0, err)
        self.assertIn(HELLO, out)
        self.assertRegex(out, r"monitor kiln-vmm, \d+ MiB, tsc \d+ kHz \(monitor\)")
        self.assertNotIn("\r", out)

    def test_selftest_passes(self):
        status, out, err = vmm("--cmdline", "kiln.selftest=1")
        self.assertEqual(status, 0, out + err)
        self.assertIn("selftest: passed", out)
        self.assertNotIn("FAIL", out)

    def test_pvh_entry_boots_too(self):
        status, out, err = vmm("--boot", "pvh")
        self.assertEqual(status, 0, err)
        self.assertIn(HELLO, out)

    def test_console_goes_to_a_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "console.log")
            status, out, err = vmm("--console", path)
            self.assertEqual(status, 0, err)
            self.assertEqual(out, "")
            with open(path) as f:
                self.assertIn(HELLO, f.read())

    def test_exit_status_is_the_guests(self):
        for wanted in (3, 77, 255):
            status, _, err = vmm("--cmdline", f"kiln.exit_status={wanted}")
            self.assertEqual(status, wanted, err)

    def test_memory_size_reaches_the_guest(self):
        status, out, err = vmm("--memory", "256M")
        self.assertEqual(status, 0, err)
        mib = int(re.search(r"(\d+) MiB", out).group(1))
        self.assertTrue(250 <= mib <= 256, out)

    def test_params_go_before_the_separator(self):
        # The kernel sees kiln-vmm's marker (monitor kiln-vmm) even with an app after `--`, and
        # the app's own words after `--` are not taken as parameters.
        status, out, _ = vmm("--cmdline", "kiln.verbose=1 -- /bin/app kiln.vmm=other")
        self.assertIn("monitor kiln-vmm", out)
        self.assertIn("cannot run /bin/app", out)
        self.assertEqual(status, 127)

    def test_unhandled_exceptions_dump_registers_and_fail(self):
        for kind, name in (("ud", "#UD"), ("pf", "#PF")):
            status, out, err = vmm("--cmdline", f"kiln.test.fault={kind}")
            self.assertEqual(status, EXIT_GUEST_CRASH, out + err)
            self.assertIn(name, out)
            self.assertIn("rip", out)
            self.assertIn("guest kernel panic", err)
            self.assertIn("vCPU 0 registers", err)

    def test_triple_fault_dumps_registers_and_fails(self):
        status, out, err = vmm("--cmdline", "kiln.test.fault=triple")
        self.assertEqual(status, EXIT_GUEST_CRASH, out + err)
        self.assertIn("triple fault", err)
        self.assertRegex(err, r"rip [0-9a-f]{16}")

    def test_watchdog_ends_a_hung_guest(self):
        status, _, err = run([VMM, "--kernel", KERNEL, "--cmdline", "kiln.test.fault=hang", "--timeout", "1"],
                             timeout=60)
        self.assertEqual(status, EXIT_TIMEOUT, err)
        self.assertIn("watchdog", err)
        self.assertIn("vCPU 0 registers", err)

    def test_stats_report_the_emulation_count(self):
        status, _, err = vmm("--stats")
        self.assertEqual(status, 0, err)
        self.assertRegex(err, r"kiln-vmm: stats: boot direct64, .*exits \d+")


class BadInput(unittest.TestCase):
    """Refused before any guest runs: no KVM needed."""

    def refuse(self, args, message):
        status, out, err = run([VMM, *args], timeout=30)
        self.assertEqual(status, EXIT_VMM_ERROR, err)
        self.assertIn(message, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)  # one clear line

    def test_missing_image(self):
        self.refuse(["--kernel", "/nonexistent/kiln.elf"], "No such file or directory")

    def test_not_an_elf(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"#!/bin/sh\necho not a kernel\n" * 10)
            f.flush()
            self.refuse(["--kernel", f.name], "not an ELF file")

    def test_truncated_kernel(self):
        with open(KERNEL, "rb") as k, tempfile.NamedTemporaryFile() as f:
            f.write(k.read(3000))
            f.flush()
            self.refuse(["--kernel", f.name], "truncated")

    def test_a_host_program_is_not_a_kernel(self):
        self.refuse(["--kernel", "/bin/true"], "not an executable")

    def test_too_little_memory(self):
        self.refuse(["--kernel", KERNEL, "--memory", "2M"], "too little memory")

    def test_bad_memory_size(self):
        self.refuse(["--kernel", KERNEL, "--memory", "lots"], "not a memory size")

    def test_no_kvm(self):
        env = dict(os.environ, KILN_KVM_DEVICE="/nonexistent/kvm")
        p = subprocess.run([VMM, "--kernel", KERNEL], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, EXIT_VMM_ERROR, p.stderr)
        self.assertIn("no usable /nonexistent/kvm: the device does not exist", p.stderr)
        with tempfile.NamedTemporaryFile() as f:  # exists, but is not KVM
            env["KILN_KVM_DEVICE"] = f.name
            p = subprocess.run([VMM, "--kernel", KERNEL], capture_output=True, text=True, timeout=30, env=env)
            self.assertEqual(p.returncode, EXIT_VMM_ERROR, p.stderr)
            self.assertIn("no usable", p.stderr)

    def test_missing_kernel_flag(self):
        status, _, err = run([VMM], timeout=30)
        self.assertEqual(status, EXIT_VMM_ERROR)
        self.assertIn("--kernel is required", err)


class QemuTcgBoot(unittest.TestCase):
    """The same kiln.elf under QEMU TCG: the `hw` backend with a fully emulated CPU."""

    def test_boots_on_the_hw_backend(self):
        status, out, err = qemu("tcg")
        self.assertEqual(status, 1, out + err)  # isa-debug-exit: status*2+1
        self.assertIn(HELLO, out)
        self.assertIn("platform hw, monitor qemu", out)

    def test_selftest_passes(self):
        status, out, err = qemu("tcg", "kiln.selftest=1")
        self.assertEqual(status, 1, out + err)
        self.assertIn("selftest: passed", out)

    def test_exit_status_and_faults(self):
        status, _, _ = qemu("tcg", "kiln.exit_status=5")
        self.assertEqual(status, 5 * 2 + 1)
        status, out, _ = qemu("tcg", "kiln.test.fault=pf")
        self.assertEqual(status, EXIT_GUEST_CRASH * 2 + 1)
        self.assertIn("#PF page fault", out)

    def test_virtio_blk_volumes_in_order(self):
        """The kernel's virtio-blk driver against QEMU's device: the self-test reads and writes each
        volume and puts back what it wrote. ioapic2=off, with ACPI: 8 transports on IRQs 16-23, the
        first device plugged on the last."""
        with tempfile.TemporaryDirectory() as d:
            rw, ro = os.path.join(d, "rw.img"), os.path.join(d, "ro.img")
            with open(rw, "wb") as f:
                f.truncate(8 << 20)
                f.seek(-1024, os.SEEK_END)
                f.write(b"k" * 1024)
            with open(ro, "wb") as f:
                f.truncate(1 << 20)
            cmd = ["timeout", "-s", "KILL", str(GUEST_TIMEOUT), *QEMU_BASE, "-accel", "tcg", "-cpu", "max",
                   "-M", "microvm,x-option-roms=off,rtc=off,ioapic2=off", "-global", "virtio-mmio.force-legacy=false",
                   "-drive", f"id=v0,file={rw},format=raw,if=none", "-device", "virtio-blk-device,drive=v0",
                   "-drive", f"id=v1,file={ro},format=raw,if=none,readonly=on", "-device", "virtio-blk-device,drive=v1",
                   "-append", "kiln.selftest=1 virtio_mmio.device=512@0xfeb00e00:23 virtio_mmio.device=512@0xfeb00c00:22"]
            status, out, err = run(cmd, timeout=GUEST_TIMEOUT + 30)
            out = out.replace("\r\n", "\n")
            self.assertEqual(status, 1, out + err)
            self.assertIn("selftest: block: vda has 16384 sectors\n", out)
            self.assertIn("selftest: block: vdb has 2048 sectors, read-only\n", out)
            self.assertIn("selftest: passed", out)
            self.assertNotIn("FAIL", out)
            with open(rw, "rb") as f:
                f.seek(-1024, os.SEEK_END)
                self.assertEqual(f.read(), b"k" * 1024)


class QemuKvmBoot(unittest.TestCase):
    """The same kiln.elf under QEMU microvm with KVM."""

    @classmethod
    def setUpClass(cls):
        if not kvm_usable():
            raise AssertionError("no usable /dev/kvm here: run this suite through scripts/with-kvm")

    def test_boots(self):
        status, out, err = qemu("kvm")
        self.assertEqual(status, 1, out + err)
        self.assertIn(HELLO, out)

    def test_selftest_passes(self):
        status, out, err = qemu("kvm", "kiln.selftest=1")
        self.assertEqual(status, 1, out + err)
        self.assertIn("selftest: passed", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
