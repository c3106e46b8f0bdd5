#!/usr/bin/env python3
"""Volumes: an ext4 file (made by Debian's mke2fs) mounted by the kernel at kiln.volume=PATH and
written by an unmodified program (tests/guest-apps/volume_io.c), on three monitors with one set of
tests (VolumeTests): kiln-proc (`--volume path=FILE`, the proc platform's pread/pwrite), QEMU TCG
(the hw kernel's virtio-blk driver against QEMU's virtio-blk on virtio-mmio, no KVM) and kiln-vmm
(the same driver against kiln-vmm's virtio-blk device; needs /dev/kvm: scripts/with-kvm). After
every run the volume passes e2fsck: -fy on a copy (which replays the journal), then -fn with
nothing to fix; every write that returned from fsync is there after a kill -9 and, on kiln-proc and
kiln-vmm, after a snapshot's restore. Bad `kiln.volume=` parameters stop the instance by name
(BadParameterTests).
Usage: test_volumes.py BUILD_DIR [unittest args, e.g. VolumesUnderQemuTcg]
"""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import control_socket

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
PROC = os.path.join(BUILD, "bin", "kiln-proc")
VMM = os.path.join(BUILD, "bin", "kiln-vmm")
KERNEL = os.path.join(BUILD, "kernel", "kiln.elf")
INITRD = os.path.join(BUILD, "tests", "guest-apps", "apps.cpio")
TIMEOUT = 60
# The features kilnd's volumes are made with (platform/volumes), which the kernel's ext4 supports.
FEATURES = "^metadata_csum,^64bit,^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file"


def make_volume(path, size="64M"):
    subprocess.run(["truncate", "-s", size, path], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-O", FEATURES, "-E",
                    "lazy_itable_init=0,lazy_journal_init=0", path], check=True, capture_output=True)


class VolumeTests:
    """The tests, for any monitor. A subclass (also a TestCase) gives `command(volume_args, cmdline)`:
    the argv that runs the kernel with the volumes (kiln's own `--volume path=FILE[,ro]` words, which
    a monitor with other words translates) and the command line; and `status(returncode)`: the
    app's exit status from the monitor's."""
    volume_size = "64M"
    timeout = TIMEOUT

    def command(self, volume_args, cmdline):
        raise NotImplementedError

    def status(self, returncode):
        return returncode

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-volumes-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.volume = os.path.join(self.dir, "data.ext4")
        make_volume(self.volume, self.volume_size)

    def run_app(self, volume_args, cmdline):
        """Runs the kernel to its end: (the app's status, stdout, stderr)."""
        p = subprocess.run(self.command(volume_args, cmdline), capture_output=True, text=True,
                           timeout=self.timeout + 30)
        return self.status(p.returncode), p.stdout.replace("\r\n", "\n"), p.stderr

    def assert_fsck_clean(self, untouched=False):
        """e2fsck -fy on a copy, then -fn: nothing left to fix. `untouched`: the volume was unmounted
        cleanly, so -fn passes on the volume itself."""
        if untouched:
            p = subprocess.run(["e2fsck", "-fn", self.volume], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        copy = os.path.join(self.dir, "fsck.ext4")
        shutil.copyfile(self.volume, copy)
        p = subprocess.run(["e2fsck", "-fy", copy], capture_output=True, text=True)
        self.assertLessEqual(p.returncode, 1, p.stdout + p.stderr)
        p = subprocess.run(["e2fsck", "-fn", copy], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def debugfs(self, request):
        return subprocess.run(["debugfs", "-R", request, self.volume], capture_output=True, text=True).stdout

    def test_files_written_in_one_run_are_there_in_the_next(self):
        status, out, err = self.run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io write /data 12")
        self.assertEqual(status, 0, out + err)
        self.assertIn("wrote 12", out)
        self.assert_fsck_clean(untouched=True)
        self.assertIn("f11", self.debugfs("ls -l /sub"))
        status, out, err = self.run_app(["--volume", f"path={self.volume}"],
                                   "kiln.volume=/data -- /bin/volume_io verify /data 12")
        self.assertEqual(status, 0, out + err)
        self.assertIn("verified 12", out)
        self.assert_fsck_clean(untouched=True)

    def test_a_read_only_volume_is_read_and_never_written(self):
        status, out, err = self.run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io write /data 3")
        self.assertEqual(status, 0, out + err)
        with open(self.volume, "rb") as f:
            before = f.read()
        status, out, err = self.run_app(["--volume", f"path={self.volume},ro"],
                                   "kiln.volume=/data:ro -- /bin/volume_io verify /data 3")
        self.assertEqual(status, 0, out + err)
        self.assertIn("verified 3", out)
        status, out, err = self.run_app(["--volume", f"path={self.volume},ro"],
                                   "kiln.volume=/data:ro -- /bin/volume_io write /data 1")
        self.assertNotEqual(status, 0, out + err)
        self.assertIn("errno 30", out)  # EROFS
        with open(self.volume, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_a_volume_that_is_not_ext4_is_named_and_left_alone(self):
        junk = os.path.join(self.dir, "junk.img")
        with open(junk, "wb") as f:
            f.truncate(8 << 20)
        status, out, err = self.run_app(["--volume", f"path={junk}"], "kiln.volume=/data -- /bin/busybox true")
        # proc0 on kiln-proc, vda on virtio-blk.
        self.assertRegex(out + err, r"kiln.volume=/data: \w+ cannot be mounted: not an ext4 file system")
        with open(junk, "rb") as f:
            self.assertEqual(f.read(), bytes(8 << 20))

    def start(self, argv):
        """Starts argv in a process group of its own (so a kill -9 takes the monitor and whatever
        it started, `timeout` and QEMU alike), killed at the end of the test if still running."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.addCleanup(lambda: (p.poll() is None and os.killpg(p.pid, signal.SIGKILL), p.communicate()))
        return p

    def stream(self, control=None, delay_ms=0):
        argv = self.command(["--volume", f"path={self.volume}"],
                            f"kiln.volume=/data -- /bin/volume_io stream /data 2000 {delay_ms}")
        if control:
            argv[argv.index("--cmdline"):argv.index("--cmdline")] = ["--control", control]
        return self.start(argv)

    def wait_for_synced(self, p, count):
        """Reads "synced I" lines until I reaches count - 1; returns the last I."""
        last, other = -1, []
        deadline = time.monotonic() + self.timeout
        while last < count - 1 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                self.fail("the instance ended early: " + "".join(other[-5:]) + p.stderr.read())
            m = re.match(r"synced (\d+)", line)
            if m:
                last = int(m.group(1))
            else:
                other.append(line)
        self.assertGreaterEqual(last, count - 1, "".join(other[-5:]))
        return last

    def count_whole_files(self):
        status, out, err = self.run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io count /data")
        self.assertEqual(status, 0, out + err)
        return int(re.search(r"files (\d+)", out).group(1))

    def test_every_fsynced_write_survives_kill_9(self):
        for round in range(3):
            p = self.stream()
            last = self.wait_for_synced(p, 10 * (round + 1))
            os.killpg(p.pid, signal.SIGKILL)  # the monitor and the instance, mid-write
            p.communicate(timeout=30)
            self.assert_fsck_clean()
            # The next mount replays the journal; every file whose fsync returned is whole.
            self.assertGreater(self.count_whole_files(), last)
            self.assert_fsck_clean(untouched=True)


class BadParameterTests:
    """Garbage `kiln.volume=` parameters (which kilnd never writes, but a user of kiln-proc or
    kiln-vmm may): the kernel names the parameter and what is wrong with it and ends the instance
    with 127 (it cannot start) before it mounts anything, so every volume is left as it was.
    `bad_cases` names the cases a monitor runs (all of them where a boot is cheap)."""
    # name: (volumes given, parameters, message)
    CASES = {
        "relative": (1, "kiln.volume=data", "kiln.volume=data: the mount point must be an absolute path"),
        "root": (1, "kiln.volume=/", "kiln.volume=/: a volume cannot be mounted over the root file system (/)"),
        "root_slashes": (1, "kiln.volume=//:ro", "kiln.volume=//:ro: a volume cannot be mounted over the root"),
        "empty": (1, "kiln.volume=", "kiln.volume=: no mount point given"),
        "no_value": (1, "kiln.volume", "kiln.volume=: no mount point given"),
        "only_mode": (1, "kiln.volume=:ro", "kiln.volume=:ro: no mount point given"),
        "unknown_mode": (1, "kiln.volume=/data:rw", "kiln.volume=/data:rw: the only mode is ro"),
        "dot_dot": (1, "kiln.volume=/data/../etc", "kiln.volume=/data/../etc: the mount point must not hold . or .."),
        "same_mount_point": (2, "kiln.volume=/data kiln.volume=/data/",
                             "kiln.volume=/data/: /data/ is also volume #0's mount point (kiln.volume=/data)"),
        "nested": (2, "kiln.volume=/data kiln.volume=/data/sub:ro",
                   "kiln.volume=/data/sub:ro: /data/sub lies under volume #0's mount point (kiln.volume=/data)"),
        "nesting": (2, "kiln.volume=/data/sub kiln.volume=/data",
                    "kiln.volume=/data: /data holds volume #0's mount point (kiln.volume=/data/sub)"),
        "more_paths_than_devices": (1, "kiln.volume=/data kiln.volume=/more",
                                    "kiln.volume=/more: no block device #1 for it (the instance has 1)"),
        "no_device": (0, "kiln.volume=/data", "kiln.volume=/data: no block device #0 for it (the instance has 0)"),
        "under_a_file": (1, "kiln.volume=/etc/motd/data",
                         "kiln.volume=/etc/motd/data: /etc/motd is a regular file in the root file system, "
                         "not a directory"),
        "on_a_file": (1, "kiln.volume=/etc/motd:ro",
                      "kiln.volume=/etc/motd:ro: /etc/motd is a regular file in the root file system"),
        "under_a_symlink": (1, "kiln.volume=/lib64/ld-linux-x86-64.so.2/data",
                            "/lib64/ld-linux-x86-64.so.2 is a symbolic link in the root file system"),
    }
    bad_cases = list(CASES)

    def test_bad_volume_parameters_are_refused_by_name(self):
        second = os.path.join(self.dir, "second.ext4")
        make_volume(second, self.volume_size)
        volumes = [self.volume, second]
        digests = [self.digest(v) for v in volumes]
        for name in self.bad_cases:
            given, parameters, message = self.CASES[name]
            with self.subTest(name):
                args = [word for v in volumes[:given] for word in ("--volume", f"path={v}")]
                status, out, err = self.run_app(args, f"{parameters} -- /bin/busybox echo the app ran")
                self.assertIn(message, out + err)
                self.assertEqual(status, 127, out + err)  # linux::kExitCannotStart
                self.assertNotIn("the app ran", out)
                self.assertEqual([self.digest(v) for v in volumes], digests, "a volume was written")

    @staticmethod
    def digest(path):
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()


class RestoreTests:
    """A snapshot through the control socket, restored with the volume given again (kiln-proc and
    kiln-vmm: `restorer --restore DIR --volume path=FILE --control SOCKET`)."""
    restorer = None


    def test_a_restored_instance_goes_on_writing_its_volume(self):
        control, snap = os.path.join(self.dir, "c.sock"), os.path.join(self.dir, "snap")
        p = self.stream(control=control, delay_ms=20)
        self.wait_for_synced(p, 5)
        self.assertTrue(control_socket.request(control, op="snapshot", dir=snap)["ok"])  # paused, then stopped
        self.assertTrue(control_socket.request(control, op="stop")["ok"])
        p.communicate(timeout=30)
        control2 = os.path.join(self.dir, "c2.sock")
        r = self.start([self.restorer, "--restore", snap, "--volume", f"path={self.volume}", "--control", control2,
                        "--timeout", str(self.timeout)])
        last = -1
        deadline = time.monotonic() + self.timeout
        while last < 15 and time.monotonic() < deadline:
            m = re.match(r"synced (\d+)", r.stdout.readline() or "end")
            if m:
                last = int(m.group(1))
        self.assertGreaterEqual(last, 15, r.stderr.read() if r.poll() is not None else "")
        os.killpg(r.pid, signal.SIGKILL)
        r.communicate(timeout=30)
        self.assert_fsck_clean()
        self.assertGreater(self.count_whole_files(), last)


class VolumesUnderKilnProc(VolumeTests, BadParameterTests, RestoreTests, unittest.TestCase):
    """kiln-proc: the volume is a file the tender opened, read and written by the proc platform."""
    restorer = PROC

    def command(self, volume_args, cmdline):
        return [PROC, "--initrd", INITRD, "--memory", "128M", "--timeout", str(self.timeout), *volume_args,
                "--cmdline", cmdline]


class VolumesUnderKilnVmm(VolumeTests, BadParameterTests, RestoreTests, unittest.TestCase):
    """kiln-vmm on /dev/kvm: the hw kernel's virtio-blk driver against kiln-vmm's virtio-blk device.
    Fails (not skips) where KVM is missing: run it through scripts/with-kvm (boot.kvm)."""
    restorer = VMM

    @classmethod
    def setUpClass(cls):
        from test_boot import kvm_usable
        if not kvm_usable():
            raise AssertionError("no usable /dev/kvm here: run this suite through scripts/with-kvm")

    def command(self, volume_args, cmdline):
        return [VMM, "--kernel", KERNEL, "--initrd", INITRD, "--memory", "128M", "--timeout", str(self.timeout),
                *volume_args, "--cmdline", cmdline]


class VolumesUnderQemuTcg(VolumeTests, BadParameterTests, unittest.TestCase):
    """QEMU microvm with TCG (no KVM): the hw kernel's virtio-blk driver against QEMU's virtio-blk
    device on virtio-mmio. A small volume, as everything is emulated; QEMU has none of kiln's
    control sockets, so no restore here. ioapic2=off, with ACPI: 8 transports on IRQs 16-23, the
    first device plugged on the last (as test_boot.QemuTcgBoot.test_virtio_blk_volumes_in_order)."""
    volume_size = "32M"
    bad_cases = ["same_mount_point", "more_paths_than_devices"]  # about 4 s a boot
    TRANSPORTS = ["512@0xfeb00e00:23", "512@0xfeb00c00:22"]

    def command(self, volume_args, cmdline):
        drives = []
        for i, spec in enumerate(volume_args[1::2]):  # --volume path=FILE[,ro]
            path, _, ro = spec.removeprefix("path=").partition(",")
            drive = f"id=v{i},file={path},format=raw,if=none" + (",readonly=on" if ro == "ro" else "")
            drives += ["-drive", drive, "-device", f"virtio-blk-device,drive=v{i}"]
        transports = " ".join(f"virtio_mmio.device={t}" for t in self.TRANSPORTS[:len(drives) // 4])
        return ["timeout", "-s", "KILL", str(self.timeout), "qemu-system-x86_64",
                "-M", "microvm,x-option-roms=off,rtc=off,ioapic2=off", "-accel", "tcg", "-cpu", "max", "-m", "256",
                "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-global", "virtio-mmio.force-legacy=false",
                *drives, "-kernel", KERNEL, "-initrd", INITRD, "-append", f"{transports} {cmdline}"]

    def status(self, returncode):
        return returncode >> 1 if returncode > 0 and returncode & 1 else -1  # isa-debug-exit: status*2+1


if __name__ == "__main__":
    unittest.main(verbosity=2)
