#!/usr/bin/env python3
"""kiln-proc: the Kiln kernel's proc build as a Linux process (no virtualization needed).

The same promises as kiln-vmm's (test_boot.KilnVmmBoot and BadInput): the console, the exit
status, the watchdog, the signals, clear refusals of bad input. The programs themselves are in
test_apps.AppsUnderKilnProc.
Usage: test_proc.py BUILD_DIR [unittest args]
"""
import fcntl
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

import control_socket
from netns import TestNetwork

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
PROC = os.path.join(BUILD, "bin", "kiln-proc")
VMM = os.path.join(BUILD, "bin", "kiln-vmm")
PROC_KERNEL = os.path.join(BUILD, "kernel", "kiln-proc.elf")
HW_KERNEL = os.path.join(BUILD, "kernel", "kiln.elf")
INITRD = os.path.join(BUILD, "tests", "guest-apps", "apps.cpio")
HELLO = "Hello from the Kiln kernel"
TIMEOUT = 60
EXIT_TIMEOUT, EXIT_VMM_ERROR, EXIT_GUEST_CRASH = 124, 125, 126


def proc(*args, timeout=TIMEOUT):
    p = subprocess.run([PROC, "--timeout", str(timeout), *args], capture_output=True, text=True, timeout=timeout + 30)
    return p.returncode, p.stdout, p.stderr


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except FileNotFoundError:
        return []


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


class ProcBoot(unittest.TestCase):
    def test_boots_prints_a_line_and_exits_zero(self):
        status, out, err = proc()
        self.assertEqual(status, 0, err)
        self.assertIn(HELLO, out)
        self.assertRegex(out, r"platform proc, monitor kiln-proc, \d+ MiB, tsc \d+ kHz \(monitor\)")

    def test_the_kernel_named_explicitly_boots_too(self):
        status, out, err = proc("--kernel", PROC_KERNEL)
        self.assertEqual(status, 0, err)
        self.assertIn(HELLO, out)

    def test_selftest_passes(self):
        # Exceptions through the host's signals, the timer through a host POSIX timer.
        status, out, err = proc("--cmdline", "kiln.selftest=1")
        self.assertEqual(status, 0, out + err)
        self.assertIn("selftest: passed", out)
        self.assertIn("#PF delivered through the IDT and recovered", out)
        self.assertNotIn("FAIL", out)

    def test_console_goes_to_a_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "console.log")
            status, out, err = proc("--console", path)
            self.assertEqual(status, 0, err)
            self.assertEqual(out, "")
            with open(path) as f:
                self.assertIn(HELLO, f.read())

    def test_exit_status_is_the_kernels(self):
        for wanted in (3, 77, 255):
            status, _, err = proc("--cmdline", f"kiln.exit_status={wanted}")
            self.assertEqual(status, wanted, err)

    def test_memory_size_reaches_the_kernel(self):
        status, out, err = proc("--memory", "256M")
        self.assertEqual(status, 0, err)
        mib = int(re.search(r"(\d+) MiB", out).group(1))
        self.assertTrue(250 <= mib <= 256, out)

    def test_status_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "status")
            status, _, err = proc("--cmdline", "kiln.exit_status=9", "--status-file", path)
            self.assertEqual(status, 9, err)
            with open(path) as f:
                self.assertEqual(f.read(), "9\n")

    def test_kernel_faults_dump_registers_and_fail(self):
        for kind, name in (("ud", "#UD"), ("pf", "#PF")):
            status, out, err = proc("--cmdline", f"kiln.test.fault={kind}")
            self.assertEqual(status, EXIT_GUEST_CRASH, out + err)
            self.assertIn(name, out)
            self.assertRegex(out, r"rip 0x[0-9a-f]{16}")
            self.assertIn("guest kernel panic", err)

    def test_watchdog_ends_a_hung_kernel(self):
        # Interrupts off and spinning: only the supervisor can end it.
        status, _, err = proc("--cmdline", "kiln.test.fault=hang", timeout=1)
        self.assertEqual(status, EXIT_TIMEOUT, err)
        self.assertIn("watchdog", err)

    def test_sigterm_ends_the_instance(self):
        p = subprocess.Popen([PROC, "--timeout", "60", "--initrd", INITRD, "--cmdline", "-- /bin/busybox sleep 50"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not children_of(p.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            instance = children_of(p.pid)
            self.assertEqual(len(instance), 1, "the instance process did not start")
            p.send_signal(signal.SIGTERM)
            status = p.wait(timeout=10)
            self.assertEqual(status, 128 + signal.SIGTERM, p.stderr.read())
            self.assertFalse(alive(instance[0]))
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()

    def test_killing_the_started_pid_ends_the_whole_instance(self):
        p = subprocess.Popen([PROC, "--timeout", "60", "--initrd", INITRD, "--cmdline", "-- /bin/busybox sleep 50"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not children_of(p.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        instance = children_of(p.pid)
        self.assertEqual(len(instance), 1, "the instance process did not start")
        p.kill()
        p.wait()
        deadline = time.monotonic() + 5
        while alive(instance[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertFalse(alive(instance[0]), "the instance outlived kiln-proc")


def instance_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def context_switches(pid):
    with open(f"/proc/{pid}/status") as f:
        return sum(int(line.split()[1]) for line in f if "ctxt_switches" in line)


class ProcIdle(unittest.TestCase):
    """An idle instance costs the host nothing: it sleeps in one host wait until a frame, a
    timer of its own or its supervisor wakes it. (Its network thread ticked ARP ten times a
    second, whether or not anything waited: at 1,000 idle instances, a core of this host.)"""

    def test_an_idle_server_does_not_wake_and_still_answers(self):
        with TestNetwork("idle") as net:
            # No IPv6 on the test's bridge (as in kilnd's network): its router solicitations and
            # MLD reports would reach the tap, and wake the instance as any frame does.
            net.run(["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            guest = "10.77.0.2"
            vm = net.start_vm([PROC, "--timeout", "60", "--initrd", INITRD], guest, "-- /bin/http-server 8080 /www")
            self.assertIsNone(vm.poll(), "the instance ended")
            r = net.run(["curl", "-sf", "-m", "10", f"http://{guest}:8080/hello"])
            self.assertEqual(r.returncode, 0, r.stderr)
            instance = children_of(vm.pid)[0]
            time.sleep(0.5)  # the last request's ACKs and timers done
            before = context_switches(instance)
            time.sleep(3)
            self.assertLessEqual(context_switches(instance) - before, 2, "an idle instance woke up")
            r = net.run(["curl", "-sf", "-m", "10", f"http://{guest}:8080/hello"])
            self.assertEqual(r.returncode, 0, "after a quiet while: " + r.stderr)


class ProcAwaitingOrders(unittest.TestCase):
    """`kiln-proc --await-orders FD PADDING` (common/host/tender_orders.h): started ahead of need,
    it runs as if started with the arguments kilnd sends, on the streams it sends."""

    def start(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        os.set_inheritable(theirs.fileno(), True)
        tender = subprocess.Popen([PROC, "--await-orders", str(theirs.fileno()), " " * 4096],
                                  pass_fds=[theirs.fileno()], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        theirs.close()
        for f in (ours, tender.stdout, tender.stderr):
            self.addCleanup(f.close)
        return ours, tender

    def test_orders_start_an_instance_on_the_streams_sent(self):
        ours, tender = self.start()
        with tempfile.TemporaryDirectory() as d:
            out_path, status = os.path.join(d, "console"), os.path.join(d, "status")
            with open(out_path, "w") as out, open(os.devnull) as null:
                orders = ["--timeout", str(TIMEOUT), "--status-file", status]
                socket.send_fds(ours, [b"".join(w.encode() + b"\0" for w in orders)],
                                [null.fileno(), out.fileno(), out.fileno()])
            self.assertEqual(tender.wait(timeout=TIMEOUT + 30), 0)
            with open(out_path) as f:
                self.assertIn(HELLO, f.read())
            with open(status) as f:
                self.assertEqual(f.read(), "0\n")
        self.assertEqual(tender.stdout.read(), b"")  # its own stdout was replaced

    def test_no_orders_is_a_quiet_exit(self):
        ours, tender = self.start()
        ours.close()
        self.assertEqual(tender.wait(timeout=30), 0)
        self.assertEqual((tender.stdout.read(), tender.stderr.read()), (b"", b""))

    def test_malformed_orders_are_refused(self):
        for message in (b"--timeout\0" + b"5", b"--timeout\0" + b"5\0"):  # unterminated; no streams
            ours, tender = self.start()
            ours.send(message)
            self.assertEqual(tender.wait(timeout=30), 2)
            self.assertIn(b"malformed orders", tender.stderr.read())


class ProcSandbox(unittest.TestCase):
    """What confines the instance: its own uid, no_new_privs, its own fds only, seccomp."""

    def running_instance(self, *args):
        p = subprocess.Popen([PROC, "--timeout", "60", "--initrd", INITRD, *args, "--cmdline",
                              "-- /bin/busybox sleep 50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = children_of(p.pid)
            # Confined once the kernel has loaded the filter.
            if children and instance_status(children[0]).get("Seccomp") == ["2"]:
                return p.pid, children[0]
            time.sleep(0.01)
        self.fail("the instance did not start")

    def test_the_instance_is_confined(self):
        supervisor, instance = self.running_instance()
        status = instance_status(instance)
        own = str(0x4b000000 + supervisor)  # proc/sandbox.cpp instance_identity
        self.assertEqual(status["Uid"], [own] * 4)
        self.assertEqual(status["Gid"], [own] * 4)
        self.assertEqual(status["Groups"], [])
        self.assertEqual(status["NoNewPrivs"], ["1"])
        self.assertEqual(status["Seccomp"], ["2"])  # a filter
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{instance}/fd"))
        self.assertEqual(fds[:3], [0, 1, 2])
        # And the memfd, the initrd's file (read-only: its pages are mapped, never written), and
        # the channel to the supervisor. (Classified by name, not sorted: where the checkout
        # lives decides how paths sort.)
        targets = [os.readlink(f"/proc/{instance}/fd/{fd}") for fd in fds[3:]]
        self.assertEqual(len(targets), 3, targets)
        self.assertEqual(sum("memfd:" in t for t in targets), 1, targets)
        self.assertEqual(sum(t.endswith("apps.cpio") for t in targets), 1, targets)
        self.assertEqual(sum(t.startswith("socket:") for t in targets), 1, targets)
        for fd in fds[3:]:
            if os.readlink(f"/proc/{instance}/fd/{fd}").endswith("apps.cpio"):
                flags = int(open(f"/proc/{instance}/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
                self.assertEqual(flags & os.O_ACCMODE, os.O_RDONLY)

    def test_uid_and_gid_can_be_chosen(self):
        _, instance = self.running_instance("--uid", "123456", "--gid", "654321")
        status = instance_status(instance)
        self.assertEqual(status["Uid"], ["123456"] * 4)
        self.assertEqual(status["Gid"], ["654321"] * 4)

    def test_the_instance_may_run_on_every_cpu_its_supervisor_may(self):
        # It is woken on the supervisor's CPU alone (instance.cpp wake_here), then let go.
        supervisor, instance = self.running_instance()
        self.assertEqual(os.sched_getaffinity(instance), os.sched_getaffinity(supervisor))
        self.assertEqual(os.sched_getaffinity(instance), os.sched_getaffinity(0))

    def test_the_host_sees_only_the_instance_memory(self):
        # Nothing of kiln-proc's own mappings (its code, heap, stack, the vDSO) is left.
        _, instance = self.running_instance()
        with open(f"/proc/{instance}/maps") as f:
            maps = f.read()
        for name in (PROC, "[heap]", "[stack]", "[vdso]"):
            self.assertNotIn(name, maps)
        self.assertIn("memfd:", maps)
        # The kernel's text and the initrd come from their files (shared page cache), not copies.
        self.assertRegex(maps, r"r-xp [0-9a-f]+ \S+ \d+ +\S*/kiln-proc.elf")
        self.assertRegex(maps, r"r--p 00000000 \S+ \d+ +\S*/apps.cpio")

    def test_a_jump_into_the_kernels_host_call_meets_the_allowlist(self):
        p = subprocess.run([PROC, "--timeout", "30", "--initrd", INITRD, "--cmdline", "-- /bin/sandbox_escape"],
                           capture_output=True, text=True, timeout=60)
        self.assertIn("write to the console is allowed", p.stdout)  # allowed: fd 1 is the console
        self.assertNotIn("ESCAPED", p.stdout)
        self.assertEqual(p.returncode, EXIT_GUEST_CRASH, p.stdout + p.stderr)
        self.assertIn("killed by SIGSYS: a host system call outside kiln-proc's seccomp allowlist", p.stderr)


class ProcSyscallRewriting(unittest.TestCase):
    """The fast path: a `mov $nr,%eax; syscall` site becomes a jump after its first trap."""

    def run_app(self, cmdline):
        p = subprocess.run([PROC, "--timeout", "30", "--initrd", INITRD, "--cmdline", cmdline],
                           capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout + p.stderr

    def test_a_libc_site_is_rewritten_and_keeps_working(self):
        status, out = self.run_app("-- /bin/rewrite_check")
        self.assertEqual(status, 0, out)
        self.assertIn("rewrite_check: rewritten", out)

    def test_rewriting_can_be_turned_off(self):
        status, out = self.run_app("kiln.syscall_rewrite=off -- /bin/rewrite_check")
        self.assertEqual(status, 1, out)
        self.assertIn("rewrite_check: not rewritten", out)

    def test_programs_run_the_same_on_the_trap_path_alone(self):
        for program, text in (("signals", "signals: ok"), ("threads", "threads: sum=50005000"),
                              ("raw_syscalls", "raw_syscalls: ok"), ("gohello", "goroutines ok")):
            with self.subTest(program=program):
                status, out = self.run_app(f"kiln.syscall_rewrite=off -- /bin/{program}")
                self.assertEqual(status, 0, out)
                self.assertIn(text, out)


class ProcBadInput(unittest.TestCase):
    """Refused before anything runs, with one clear line."""

    def refuse(self, args, message):
        p = subprocess.run([PROC, *args], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, EXIT_VMM_ERROR, p.stderr)
        self.assertIn(message, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_missing_image(self):
        self.refuse(["--kernel", "/nonexistent/kiln-proc.elf"], "No such file or directory")

    def test_not_an_elf(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"#!/bin/sh\necho not a kernel\n" * 10)
            f.flush()
            self.refuse(["--kernel", f.name], "not an ELF file")

    def test_truncated_kernel(self):
        with open(PROC_KERNEL, "rb") as k, tempfile.NamedTemporaryFile() as f:
            f.write(k.read(3000))
            f.flush()
            self.refuse(["--kernel", f.name], "truncated")

    def test_a_host_program_is_not_a_kernel(self):
        self.refuse(["--kernel", "/bin/true"], "not an executable")

    def test_the_vm_kernel_is_not_the_proc_kernel(self):
        self.refuse(["--kernel", HW_KERNEL], "not the proc build of the Kiln kernel")

    def test_kiln_vmm_refuses_the_proc_kernel(self):
        p = subprocess.run([VMM, "--kernel", PROC_KERNEL], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, EXIT_VMM_ERROR, p.stderr)
        self.assertIn("run it with kiln-proc", p.stderr)

    def test_too_little_memory(self):
        self.refuse(["--memory", "2M"], "too little memory")

    def test_bad_memory_size(self):
        self.refuse(["--memory", "lots"], "not a memory size")

    def test_missing_initrd(self):
        self.refuse(["--initrd", "/nonexistent/apps.cpio"], "No such file or directory")

    def test_bad_net_options(self):
        self.refuse(["--net", "tap=a", "--net", "tap=b"], "one network card, not 2")
        self.refuse(["--net", "tap=a,loss=1"], "loss, reorder and delay are kiln-vmm's")

    def test_restore_takes_no_kernel_or_initrd(self):
        self.refuse(["--restore", "/tmp", "--initrd", INITRD], "the snapshot holds its initrd")
        self.refuse(["--restore", "/nonexistent/snapshot"], "/nonexistent/snapshot/state: cannot read it")


class ProcVolumes(unittest.TestCase):
    """--volume: host files as the kernel's block devices (kernel/platform/proc/volume.cpp)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-volumes-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def volume(self, name, size=8 << 20):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.truncate(size)
        return path

    def test_selftest_reads_and_writes_each_volume_in_order(self):
        a, b = self.volume("a.img"), self.volume("b.img", 1 << 20)
        with open(a, "r+b") as f:
            f.seek(-1024, os.SEEK_END)
            f.write(b"k" * 1024)
        status, out, err = proc("--volume", f"path={a}", "--volume", f"path={b},ro", "--cmdline", "kiln.selftest=1")
        self.assertEqual(status, 0, out + err)
        self.assertIn("selftest: block: proc0 has 16384 sectors\n", out)
        self.assertIn("selftest: block: proc1 has 2048 sectors, read-only\n", out)
        self.assertIn("selftest: passed", out)
        self.assertNotIn("FAIL", out)
        with open(a, "rb") as f:  # the self-test put back what it overwrote
            f.seek(-1024, os.SEEK_END)
            self.assertEqual(f.read(), b"k" * 1024)

    def test_a_kernel_boots_with_a_volume(self):
        status, out, err = proc("--volume", f"path={self.volume('boot.img')}")
        self.assertEqual(status, 0, err)
        self.assertIn(HELLO, out)

    def test_a_volume_in_use_is_refused(self):
        path = self.volume("busy.img")
        with open(path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            status, out, err = proc("--volume", f"path={path}")
            self.assertEqual(status, EXIT_VMM_ERROR, err)
            self.assertIn("in use by another instance", err)
            status, out, err = proc("--volume", f"path={path},ro")  # readers share
            self.assertEqual(status, 0, err)

    def test_bad_volumes_are_refused(self):
        odd = self.volume("odd.img", 1000)
        for args, message in [(["--volume", f"path={odd}"], "not a whole number of 512-byte sectors"),
                              (["--volume", "path=/nonexistent/v.img"], "No such file or directory"),
                              (["--volume", f"path={self.dir}"], "not a regular file"),
                              (["--volume", "ro"], "path=FILE is required"),
                              (["--volume", f"path={odd},rw"], "unknown or empty setting 'rw'"),
                              (["--volume", f"path={self.volume('v.img')},ro"] * 17, "at most 16")]:
            p = subprocess.run([PROC, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, EXIT_VMM_ERROR, p.stderr)
            self.assertIn(message, p.stderr)


    def test_snapshot_and_restore_with_the_same_volumes(self):
        path = self.volume("snap.img")
        control, snap = os.path.join(self.dir, "c.sock"), os.path.join(self.dir, "snap")
        p = subprocess.Popen([PROC, "--timeout", "60", "--initrd", INITRD, "--volume", f"path={path}", "--control",
                              control, "--cmdline", "-- /bin/busybox sleep 50"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (p.kill(), p.communicate()))
        self.assertTrue(control_socket.request(control, op="snapshot", dir=snap, resume=True)["ok"])
        # The original still holds its volume: a restore beside it is refused.
        busy = subprocess.run([PROC, "--restore", snap, "--volume", f"path={path}"], capture_output=True, text=True,
                              timeout=30)
        self.assertEqual(busy.returncode, EXIT_VMM_ERROR, busy.stderr)
        self.assertIn("in use by another instance", busy.stderr)
        self.assertTrue(control_socket.request(control, op="stop")["ok"])
        p.communicate(timeout=30)
        for args, message in [([], "the snapshot's instance has 1 volumes"),
                              (["--volume", f"path={self.volume('small.img', 1 << 20)}"], "was 8388608 bytes"),
                              (["--volume", f"path={path},ro"], "read-only")]:
            refused = subprocess.run([PROC, "--restore", snap, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(refused.returncode, EXIT_VMM_ERROR, refused.stderr)
            self.assertIn(message, refused.stderr)
        control2 = os.path.join(self.dir, "c2.sock")
        r = subprocess.Popen([PROC, "--restore", snap, "--volume", f"path={path}", "--control", control2, "--timeout",
                              "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (r.kill(), r.communicate()))
        self.assertEqual(control_socket.request(control2, op="stats")["stats"]["state"], "running")
        self.assertTrue(control_socket.request(control2, op="stop")["ok"])
        out, err = r.communicate(timeout=30)
        self.assertEqual(r.returncode, 0, out + err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
