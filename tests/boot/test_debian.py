#!/usr/bin/env python3
"""Programs from Debian's packages, unmodified and dynamically linked, on the Kiln kernel: a root
file system made by scripts/debian-rootfs from the .deb files scripts/install-deps put in the
cache (never downloaded here; tests/boot/debian_image.py), under kiln-proc, QEMU TCG and kiln-vmm.

Usage: test_debian.py BUILD_DIR [unittest args, e.g. DebianUnderKilnProc]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import debian_image
import test_apps
from netns import TestNetwork

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
KERNEL = os.path.join(BUILD, "kernel", "kiln.elf")
TIMEOUT = float(os.environ.get("KILN_TEST_GUEST_TIMEOUT", "120"))
GUEST = "10.77.0.5"
UNKNOWN = "unsupported system call"

work = None
initrd = None


def setUpModule():
    """One root file system for every test (tests/boot/debian_image.py)."""
    global work, initrd
    work = tempfile.mkdtemp(prefix="kiln-debian-")
    _, initrd = debian_image.build(work)


def tearDownModule():
    shutil.rmtree(work, ignore_errors=True)


def proc_argv():
    return [os.path.join(BUILD, "bin", "kiln-proc"), "--initrd", initrd, "--memory", "512M",
            "--timeout", str(int(TIMEOUT))]


def vmm_argv():
    return [os.path.join(BUILD, "bin", "kiln-vmm"), "--kernel", KERNEL, "--initrd", initrd, "--memory", "512M",
            "--timeout", str(int(TIMEOUT))]


def run_monitor(argv, cmdline):
    p = subprocess.run([*argv, "--cmdline", cmdline], capture_output=True, text=True, timeout=TIMEOUT + 30)
    return p.returncode, p.stdout, p.stderr


class DebianPrograms:
    def run_program(self, cmdline):
        raise NotImplementedError

    def check(self, cmdline, text):
        status, out, err = self.run_program(cmdline)
        self.assertEqual(status, 0, f"{cmdline}\nstdout:\n{out}\nstderr:\n{err}")
        self.assertIn(text, out)
        self.assertNotIn(UNKNOWN, out + err)

    def test_python_standard_library(self):
        expected = {"rows": 1000, "threads": 4, "sum": 149999500000, "sha": "cdfe9ad58b46226d"}
        self.check("-- /usr/bin/python3.11 /app/python_check.py", json.dumps(expected))

    def test_busybox_sh_runs_an_entrypoint(self):
        files = len(os.listdir(os.path.join(debian_image.SOURCE, "tests", "debian-apps")))
        self.check("-- /app/entrypoint.sh", f"entrypoint: start as pid 1\nentrypoint: {files} files in /app\nKILN\n"
                   "entrypoint: redirection ok\nentrypoint: exec as pid 1\n")

    def test_python_http_server_asks_itself(self):
        self.check("-- /usr/bin/python3.11 /app/python_serve.py 8080 --self-test", "hello from python on kiln")


class ServesTheHost:
    """Python's http.server answering curl on the host, through the instance's tap."""

    def test_python_http_server_serves_the_host(self):
        with TestNetwork("debian") as net:
            vm = net.start_vm(self.monitor_argv(), GUEST, "-- /usr/bin/python3.11 /app/python_serve.py 8080")
            self.assertIsNone(vm.poll(), TestNetwork.output(vm))
            for _ in range(3):
                r = net.run(["curl", "-sS", "-m", "20", f"http://{GUEST}:8080/"])
                self.assertEqual(r.stdout, "hello from python on kiln\n", r.stderr + TestNetwork.output(vm))


    def test_nginx_serves_a_static_file_to_wrk(self):
        with TestNetwork("nginx") as net:
            vm = net.start_vm(self.monitor_argv(), GUEST, "-- /usr/sbin/nginx -c /app/nginx.conf")
            self.assertIsNone(vm.poll(), TestNetwork.output(vm))
            r = net.run(["curl", "-sS", "-m", "20", f"http://{GUEST}:8080/index.html"])
            self.assertEqual(r.stdout, "hello from nginx on kiln\n", r.stderr + TestNetwork.output(vm))
            r = net.run(["wrk", "-t1", "-c4", "-d2s", "--timeout", "5s", f"http://{GUEST}:8080/index.html"], timeout=60)
            requests = int(r.stdout.split(" requests in ")[0].split()[-1]) if " requests in " in r.stdout else 0
            self.assertGreaterEqual(requests, 1000, r.stdout + r.stderr + TestNetwork.output(vm))
            for failure in ("Socket errors", "Non-2xx"):
                self.assertNotIn(failure, r.stdout, TestNetwork.output(vm))
            self.assertIsNone(vm.poll(), TestNetwork.output(vm))

    def test_redis_answers_redis_benchmark_saves_and_restarts(self):
        with TestNetwork("redis") as net:
            vm = net.start_vm(self.monitor_argv(), GUEST, "-- /app/redis-twice.sh")
            self.assertIsNone(vm.poll(), TestNetwork.output(vm))
            r = net.run(["redis-benchmark", "-h", GUEST, "-n", "1000", "-c", "4", "-t", "get,set,lpush", "-q"],
                        timeout=120)
            for command in ("SET", "GET", "LPUSH"):
                self.assertRegex(r.stdout, rf"{command}: [0-9.]+ requests per second", r.stderr + TestNetwork.output(vm))
            cli = ["redis-cli", "-h", GUEST]
            self.assertEqual(net.run([*cli, "SET", "kiln", "unikernel"]).stdout.strip(), "OK")
            self.assertEqual(net.run([*cli, "GET", "kiln"]).stdout.strip(), "unikernel")
            self.assertEqual(net.run([*cli, "SAVE"]).stdout.strip(), "OK", TestNetwork.output(vm))
            self.assertEqual(net.run([*cli, "SET", "after-save", "kept by bgsave"]).stdout.strip(), "OK")
            # The background save: redis forks a child that writes the file and exits.
            self.assertIn("Background saving started", net.run([*cli, "BGSAVE"]).stdout, TestNetwork.output(vm))
            deadline = time.time() + 30
            info = ""
            while time.time() < deadline:
                info = net.run([*cli, "INFO", "persistence"]).stdout
                if "rdb_bgsave_in_progress:0" in info and "rdb_last_bgsave_status:ok" in info:
                    break
                time.sleep(0.2)
            self.assertIn("rdb_bgsave_in_progress:0", info, TestNetwork.output(vm))
            self.assertIn("rdb_last_bgsave_status:ok", info, TestNetwork.output(vm))
            # A restart: the server ends without saving, and the second one reads what BGSAVE wrote.
            net.run([*cli, "SHUTDOWN", "NOSAVE"])
            deadline = time.time() + 30
            while time.time() < deadline and net.run([*cli, "PING"]).stdout.strip() != "PONG":
                time.sleep(0.2)
            self.assertIn("starting it again", TestNetwork.output(vm))
            self.assertEqual(net.run([*cli, "GET", "after-save"]).stdout.strip(), "kept by bgsave", TestNetwork.output(vm))
            self.assertEqual(net.run([*cli, "GET", "kiln"]).stdout.strip(), "unikernel")
            self.assertEqual(net.run([*cli, "LLEN", "mylist"]).stdout.strip(), "1000")
            self.assertIsNone(vm.poll(), TestNetwork.output(vm))


class DebianUnderKilnProc(DebianPrograms, ServesTheHost, unittest.TestCase):
    def run_program(self, cmdline):
        return run_monitor(proc_argv(), cmdline)

    def monitor_argv(self):
        return proc_argv()


class DebianUnderKilnVmm(DebianPrograms, ServesTheHost, unittest.TestCase):
    def run_program(self, cmdline):
        return run_monitor(vmm_argv(), cmdline)

    def monitor_argv(self):
        return vmm_argv()


class DebianUnderQemuTcg(DebianPrograms, unittest.TestCase):
    def run_program(self, cmdline):
        return test_apps.run_qemu(cmdline, initrd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
