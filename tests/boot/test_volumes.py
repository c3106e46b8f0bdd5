#!/usr/bin/env python3
"""Volumes on the proc platform: an ext4 file (made by Debian's mke2fs) given to kiln-proc with
--volume, mounted by the kernel at kiln.volume=PATH, written by an unmodified program
(tests/guest-apps/volume_io.c). After every run the volume passes e2fsck: -fy on a copy (which
replays the journal), then -fn with nothing to fix; every write that returned from fsync is there
after a kill -9 and after a snapshot's restore.
Usage: test_volumes.py BUILD_DIR [unittest args]
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
PROC = os.path.join(BUILD, "bin", "kiln-proc")
INITRD = os.path.join(BUILD, "tests", "guest-apps", "apps.cpio")
TIMEOUT = 60
# The features kilnd's volumes are made with (platform/volumes), which the kernel's ext4 supports.
FEATURES = "^metadata_csum,^64bit,^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file"


def make_volume(path, size="64M"):
    subprocess.run(["truncate", "-s", size, path], check=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-O", FEATURES, "-E",
                    "lazy_itable_init=0,lazy_journal_init=0", path], check=True, capture_output=True)


def run_app(volume_args, cmdline, timeout=TIMEOUT):
    p = subprocess.run([PROC, "--initrd", INITRD, "--memory", "128M", "--timeout", str(timeout), *volume_args,
                        "--cmdline", cmdline], capture_output=True, text=True, timeout=timeout + 30)
    return p.returncode, p.stdout, p.stderr


class VolumesUnderKilnProc(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-volumes-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.volume = os.path.join(self.dir, "data.ext4")
        make_volume(self.volume)

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
        status, out, err = run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io write /data 12")
        self.assertEqual(status, 0, out + err)
        self.assertIn("wrote 12", out)
        self.assert_fsck_clean(untouched=True)
        self.assertIn("f11", self.debugfs("ls -l /sub"))
        status, out, err = run_app(["--volume", f"path={self.volume}"],
                                   "kiln.volume=/data -- /bin/volume_io verify /data 12")
        self.assertEqual(status, 0, out + err)
        self.assertIn("verified 12", out)
        self.assert_fsck_clean(untouched=True)

    def test_a_read_only_volume_is_read_and_never_written(self):
        status, out, err = run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io write /data 3")
        self.assertEqual(status, 0, out + err)
        with open(self.volume, "rb") as f:
            before = f.read()
        status, out, err = run_app(["--volume", f"path={self.volume},ro"],
                                   "kiln.volume=/data:ro -- /bin/volume_io verify /data 3")
        self.assertEqual(status, 0, out + err)
        self.assertIn("verified 3", out)
        status, out, err = run_app(["--volume", f"path={self.volume},ro"],
                                   "kiln.volume=/data:ro -- /bin/volume_io write /data 1")
        self.assertNotEqual(status, 0, out + err)
        self.assertIn("errno 30", out)  # EROFS
        with open(self.volume, "rb") as f:
            self.assertEqual(f.read(), before)

    def test_a_volume_that_is_not_ext4_is_named_and_left_alone(self):
        junk = os.path.join(self.dir, "junk.img")
        with open(junk, "wb") as f:
            f.truncate(8 << 20)
        status, out, err = run_app(["--volume", f"path={junk}"], "kiln.volume=/data -- /bin/busybox true")
        self.assertIn("kiln.volume=/data: proc0 cannot be mounted: not an ext4 file system", out + err)
        with open(junk, "rb") as f:
            self.assertEqual(f.read(), bytes(8 << 20))

    def stream(self, extra_args=(), control=None, delay_ms=0):
        args = [PROC, "--initrd", INITRD, "--memory", "128M", "--timeout", str(TIMEOUT), "--volume",
                f"path={self.volume}", *extra_args]
        if control:
            args += ["--control", control]
        p = subprocess.Popen(args + ["--cmdline", f"kiln.volume=/data -- /bin/volume_io stream /data 2000 {delay_ms}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.addCleanup(lambda: (p.poll() is None and os.killpg(p.pid, signal.SIGKILL), p.communicate()))
        return p

    def wait_for_synced(self, p, count):
        """Reads "synced I" lines until I reaches count - 1; returns the last I."""
        last, other = -1, []
        deadline = time.monotonic() + TIMEOUT
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
        status, out, err = run_app(["--volume", f"path={self.volume}"], "kiln.volume=/data -- /bin/volume_io count /data")
        self.assertEqual(status, 0, out + err)
        return int(re.search(r"files (\d+)", out).group(1))

    def test_every_fsynced_write_survives_kill_9(self):
        for round in range(3):
            p = self.stream()
            last = self.wait_for_synced(p, 10 * (round + 1))
            os.killpg(p.pid, signal.SIGKILL)  # the tender and the instance, mid-write
            p.communicate(timeout=30)
            self.assert_fsck_clean()
            # The next mount replays the journal; every file whose fsync returned is whole.
            self.assertGreater(self.count_whole_files(), last)
            self.assert_fsck_clean(untouched=True)

    def request(self, path, **request):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            for _ in range(300):
                try:
                    s.connect(path)
                    break
                except (FileNotFoundError, ConnectionRefusedError) as e:
                    time.sleep(0.05)
            s.sendall((json.dumps(request) + "\n").encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                self.assertTrue(chunk, "the control socket closed")
                data += chunk
                for line in data.split(b"\n")[:-1]:
                    answer = json.loads(line)
                    if "ok" in answer:
                        return answer

    def test_a_restored_instance_goes_on_writing_its_volume(self):
        control, snap = os.path.join(self.dir, "c.sock"), os.path.join(self.dir, "snap")
        p = self.stream(control=control, delay_ms=20)
        self.wait_for_synced(p, 5)
        self.assertTrue(self.request(control, op="snapshot", dir=snap)["ok"])  # paused, then stopped
        self.assertTrue(self.request(control, op="stop")["ok"])
        p.communicate(timeout=30)
        control2 = os.path.join(self.dir, "c2.sock")
        r = subprocess.Popen([PROC, "--restore", snap, "--volume", f"path={self.volume}", "--control", control2,
                              "--timeout", str(TIMEOUT)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        self.addCleanup(lambda: (r.poll() is None and os.killpg(r.pid, signal.SIGKILL), r.communicate()))
        last = -1
        deadline = time.monotonic() + TIMEOUT
        while last < 15 and time.monotonic() < deadline:
            m = re.match(r"synced (\d+)", r.stdout.readline() or "end")
            if m:
                last = int(m.group(1))
        self.assertGreaterEqual(last, 15, r.stderr.read() if r.poll() is not None else "")
        os.killpg(r.pid, signal.SIGKILL)
        r.communicate(timeout=30)
        self.assert_fsck_clean()
        self.assertGreater(self.count_whole_files(), last)


if __name__ == "__main__":
    unittest.main(verbosity=2)
