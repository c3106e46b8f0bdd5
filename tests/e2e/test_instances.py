#!/usr/bin/env python3
"""kiln run, ps, logs, stop, start, rm, inspect, info through the real kiln and a real kilnd
(started by kiln itself) on a scratch state directory, with real guests, on the host's default
platform: kvm where /dev/kvm works (scripts/with-kvm), else proc."""
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from e2e_support import KilnCommand, UnixHttp, api_request, end_state, kilnd_pid

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
KILN = os.path.join(BUILD, "bin", "kiln")
APPS = os.path.join(BUILD, "tests", "guest-apps")


class InstanceCase(KilnCommand, unittest.TestCase):
    kiln_binary = KILN

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-e2e-instances-")
        self.state = os.path.join(self.dir, "state")
        # Restart back-off scaled down: 0, 200 ms, then 400 ms.
        self.env = dict(os.environ, KILN_STATE_DIR=self.state, KILN_BACKOFF_MS="0,200,400")
        app = os.path.join(self.dir, "apps")
        os.makedirs(os.path.join(app, "rootfs", "bin"))
        for program in ("hello", "args_env"):
            shutil.copy(os.path.join(APPS, program), os.path.join(app, "rootfs", "bin", program))
        shutil.copy("/bin/busybox", os.path.join(app, "rootfs", "bin", "busybox"))
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write("spec: v0.6\nname: apps\ncmd: /bin/hello\nrootfs: ./rootfs\nenv: [GREETING=from the image]\n")
        self.kiln("build", app)

    def tearDown(self):
        end_state(self.state)
        shutil.rmtree(self.dir, ignore_errors=True)

    def kilnd_pid(self):
        return kilnd_pid(self.state)

    def why(self, instance):
        """What a failure should show of an instance: its record, and the ends of its tender's
        messages and of its console."""
        lines = [json.dumps(instance)]
        for log in ("vmm.log", "console.log"):
            try:
                with open(os.path.join(self.state, "instances", instance["uuid"], log)) as f:
                    lines.append(f"{log}: ...{f.read()[-2000:]}")
            except OSError as e:
                lines.append(f"{log}: {e}")
        return "\n".join(lines)

    def inspect(self, name):
        return json.loads(self.kiln("inspect", name).stdout)[0]

    def api(self, method, path, body=None):
        return api_request(os.path.join(self.state, "kilnd.sock"), method, path, body, timeout=10)[1]

    def wait_for(self, name, predicate, seconds=60):
        deadline = time.time() + seconds
        instance = None
        while time.time() < deadline:
            r = self.kiln("inspect", name, ok=False)  # it may not exist yet
            if r.returncode == 0:
                instance = json.loads(r.stdout)[0]
                if predicate(instance):
                    return instance
            time.sleep(0.1)
        self.fail(f"{name} never got there: {instance}")


class RunAttached(InstanceCase):
    def test_run_prints_the_console_and_exits_with_the_applications_status(self):
        r = self.kiln("run", "--name", "first", "apps")
        self.assertIn("hello from a static Linux binary", r.stdout)
        r = self.kiln("run", "--rm", "apps", "/bin/hello", "7", ok=False)  # ARGS replace the whole cmd
        self.assertEqual(r.returncode, 7, r.stderr)
        r = self.kiln("run", "--rm", "-e", "EXTRA=yes please", "apps", "/bin/args_env", "a", "two words")
        self.assertIn("argv[2]=two words", r.stdout)
        self.assertIn("env GREETING=from the image", r.stdout)
        ps = self.kiln("ps", "-a").stdout
        self.assertRegex(ps, r"first\s+stopped\s+apps:latest")
        self.assertNotIn("apps-", ps)  # the --rm ones are gone

    def test_run_a_directory_with_only_a_dockerfile(self):
        project = os.path.join(self.dir, "docker-hello")
        os.makedirs(project)
        shutil.copy(os.path.join(APPS, "hello"), os.path.join(project, "hello"))
        with open(os.path.join(project, "Dockerfile"), "w") as f:
            f.write('FROM scratch\nCOPY hello /bin/hello\nCMD ["/bin/hello", "3"]\n')
        r = self.kiln("run", "--rm", project, ok=False)  # built first, as a directory with a Kraftfile is
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("hello from a static Linux binary", r.stdout)
        # WORKDIR and USER: the kernel starts the program there and as that user (kiln.workdir,
        # kiln.user); a relative program is found from the WORKDIR, as Docker's.
        shutil.copy("/bin/busybox", os.path.join(project, "busybox"))  # Debian's busybox-static
        with open(os.path.join(project, "passwd"), "w") as f:
            f.write("root:x:0:0::/:/bin/sh\nweb:x:1000:1001::/srv:/bin/sh\n")
        with open(os.path.join(project, "Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd /etc/passwd\nCOPY hello /srv/app/hello\n"
                    "WORKDIR /srv/app\nUSER web\n"
                    'CMD ["/bin/busybox", "sh", "-c", "pwd; exec ./hello 4"]\n')
        r = self.kiln("run", "--rm", project, ok=False)
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("/srv/app\nhello from a static Linux binary", r.stdout)
        r = self.kiln("run", "--rm", "docker-hello", "/bin/busybox", "id")  # the image built just now
        self.assertIn("uid=1000(web) gid=1001", r.stdout)

    def test_ctrl_c_stops_the_instance(self):
        run = subprocess.Popen([KILN, "run", "--name", "interrupted", "apps", "/bin/busybox", "sleep", "120"],
                               env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_for("interrupted", lambda i: i["state"] == "running")
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=60)
        self.assertNotEqual(run.returncode, 0, out + err)
        stopped = self.inspect("interrupted")
        self.assertEqual(stopped["state"], "stopped")
        self.assertTrue(stopped["stop_reason"] & 8, stopped)  # stopped at the user's request

    def test_a_bad_request_is_one_line(self):
        r = self.kiln("run", "nothing:here", ok=False)
        self.assertEqual((r.returncode, r.stderr), (1, "kiln: no image 'nothing:here'\n"))
        r = self.kiln("run", "--restart", "sometimes", "apps", ok=False)
        self.assertEqual(r.stderr, "kiln: field 'restart_policy' must be never, always or on-failure\n")


class DebianImages(InstanceCase):
    """An image of Debian's own python3 (scripts/debian-rootfs, from the .deb cache), run by kiln
    without -m: its memory grows with its root file system."""

    def test_python_from_debian_runs_without_a_memory_size(self):
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "boot"))
        import debian_image
        rootfs, _ = debian_image.build(self.dir, debian_image.PYTHON, initrd=False)
        app = os.path.join(self.dir, "python")
        os.makedirs(app)
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write(f'spec: v0.6\nname: python\nrootfs: {rootfs}\ncmd: ["/usr/bin/python3.11", "/app/python_check.py"]\n')
        self.kiln("build", app)
        r = self.kiln("run", "--name", "py", "python")
        self.assertIn('{"rows": 1000, "threads": 4, "sum": 149999500000, "sha": "cdfe9ad58b46226d"}', r.stdout)
        self.assertGreater(self.inspect("py")["memory_mb"], 64)
        # A dynamic program without its linker in the rootfs is refused when the image is built.
        os.remove(os.path.join(rootfs, "lib64", "ld-linux-x86-64.so.2"))
        r = self.kiln("build", app, ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("linker /lib64/ld-linux-x86-64.so.2 is not in the rootfs", r.stderr)


class Platforms(InstanceCase):
    """kvm (kiln-vmm) and proc (kiln-proc) side by side: what the host has, the default, and each
    instance's own, asked for or named by its image's Kraftfile targets. Host-agnostic: a platform
    this host lacks must be refused by name instead."""

    def info(self):
        return json.loads(self.kiln("info", "-o", "json").stdout)

    def image(self, name, targets):
        app = os.path.join(self.dir, name)
        os.makedirs(os.path.join(app, "rootfs", "bin"))
        shutil.copy(os.path.join(APPS, "hello"), os.path.join(app, "rootfs", "bin", "hello"))
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write(f"spec: v0.6\nname: {name}\ncmd: /bin/hello\nrootfs: ./rootfs\ntargets: [{targets}]\n")
        self.kiln("build", app)

    def test_info_names_each_platform_and_the_default(self):
        info = self.info()
        kvm = info["platforms"]["kvm"]["available"]
        for platform, entry in info["platforms"].items():
            self.assertEqual(entry["available"], "reason" not in entry, entry)
        self.assertEqual(info["default_platform"], "kvm" if kvm else "proc")
        self.assertRegex(self.kiln("info").stdout, r"proc\s+yes")

    def test_each_instance_runs_on_the_platform_it_asks_for(self):
        info = self.info()
        for platform, entry in info["platforms"].items():
            if not entry["available"]:
                r = self.kiln("run", "--platform", platform, "--rm", "apps", ok=False)
                self.assertEqual(r.returncode, 1)
                self.assertIn(f"platform {platform}: not on this host: {entry['reason']}", r.stderr)
                continue
            r = self.kiln("run", "--platform", platform, "--name", f"on-{platform}", "apps")
            self.assertIn("hello from a static Linux binary", r.stdout)
            self.assertEqual(self.inspect(f"on-{platform}")["platform"], platform)
        self.kiln("run", "--name", "default", "apps")
        self.assertEqual(self.inspect("default")["platform"], info["default_platform"])
        r = self.kiln("run", "--platform", "xen", "apps", ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("xen", r.stderr)
        api = UnixHttp(os.path.join(self.state, "kilnd.sock"))
        api.request("POST", "/v1/instances", json.dumps({"image": "apps", "platform": "xen"}))
        answer = api.getresponse()
        self.assertEqual(answer.status, 400)
        self.assertIn("field 'platform' must be kvm or proc, not 'xen'", answer.read().decode())

    def test_kraftfile_targets_choose_the_platform(self):
        info = self.info()
        self.image("as-process", "linuxu/x86_64")
        self.kiln("run", "--name", "p", "as-process")
        self.assertEqual(self.inspect("p")["platform"], "proc")
        self.image("as-vm", "fc/x86_64, qemu/x86_64")
        r = self.kiln("run", "--platform", "proc", "as-vm", ok=False)
        self.assertIn("platform proc: image 'as-vm:latest' is built for kvm (its Kraftfile's targets)", r.stderr)
        if info["platforms"]["kvm"]["available"]:
            self.kiln("run", "--name", "v", "as-vm")
            self.assertEqual(self.inspect("v")["platform"], "kvm")
        else:
            r = self.kiln("run", "as-vm", ok=False)
            self.assertIn("image 'as-vm:latest' is built for kvm, which this host does not have", r.stderr)


class WaitingTenders(InstanceCase):
    """kilnd keeps a tender of each platform started and waiting for orders
    (platform/instances/tender_pool.h): an instance takes it, shows its orders as its command
    line, and another waits after it; one that dies waiting is replaced or passed over, and none
    outlives kilnd."""

    def waiting_tenders(self, kilnd):
        children = []
        for task in os.listdir(f"/proc/{kilnd}/task"):  # each thread's own children
            with open(f"/proc/{kilnd}/task/{task}/children") as f:
                children += map(int, f.read().split())
        return [pid for pid in children if b"--await-orders" in self.command_line(pid).split(b"\0")]

    @staticmethod
    def command_line(pid):
        """Empty once the process is gone (or a zombie)."""
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read()
        except OSError:
            return b""

    def eventually(self, predicate, seconds=10):
        deadline = time.time() + seconds
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        self.fail("never happened")

    def test_an_instance_takes_the_waiting_tender(self):
        self.kiln("ps")  # starts kilnd
        kilnd = self.kilnd_pid()
        waiting = self.eventually(lambda: self.waiting_tenders(kilnd))
        self.kiln("run", "-d", "--name", "sleeper", "apps", "/bin/busybox", "sleep", "120")
        sleeper = self.wait_for("sleeper", lambda i: i["state"] == "running")
        self.assertIn(sleeper["pid"], waiting)
        words = self.command_line(sleeper["pid"]).split(b"\0")
        self.assertIn(os.path.join(self.state, "instances", sleeper["uuid"], "status").encode(), words)
        self.assertNotIn(b"--await-orders", words)
        # Another, once the take is past.
        after = self.eventually(lambda: [p for p in self.waiting_tenders(kilnd) if p not in waiting])
        # One that dies waiting: the next instance still starts.
        for pid in after:
            os.kill(pid, signal.SIGKILL)
        r = self.kiln("run", "--rm", "apps")
        self.assertIn("hello from a static Linux binary", r.stdout)
        # kilnd gone: its waiting tenders go; its instances stay.
        waiting = self.eventually(lambda: self.waiting_tenders(kilnd))
        os.kill(kilnd, signal.SIGKILL)
        self.eventually(lambda: not any(map(self.command_line, waiting)))
        self.assertEqual(self.inspect("sleeper")["pid"], sleeper["pid"])  # a new kilnd adopts it
        self.kiln("rm", "-f", "sleeper")


class TendersHoldNothingOfKilnds(InstanceCase):
    """A tender gets its orders, its logs and its namespace, no other descriptor of kilnd's: a
    client's connection that was open when it started ends with kilnd, not with the instance."""

    def test_a_connection_ends_with_kilnd(self):
        self.kiln("ps")  # starts kilnd, and its waiting tender
        kilnd = self.kilnd_pid()
        connection = UnixHttp(os.path.join(self.state, "kilnd.sock"), timeout=10)
        connection.request("GET", "/v1/healthz")
        connection.getresponse().read()  # kept alive, open on both ends
        self.kiln("run", "-d", "--name", "first", "apps", "/bin/busybox", "sleep", "120")
        time.sleep(0.3)  # the waiting tender taken is replaced, with the connection open
        self.kiln("run", "-d", "--name", "second", "apps", "/bin/busybox", "sleep", "120")
        self.wait_for("second", lambda i: i["state"] == "running")
        os.kill(kilnd, signal.SIGKILL)
        connection.sock.settimeout(5)
        try:
            self.assertEqual(connection.sock.recv(1), b"")
        except socket.timeout:
            self.fail("the connection outlived kilnd: an instance's tender holds it open")
        finally:
            connection.close()
        self.kiln("rm", "-f", "first", "second")  # a new kilnd adopts them


class Limits(InstanceCase):
    """An instance's CPU share and process cap (--cpu-shares, --pids-limit; the API's cpu_shares,
    pids_limit) are its tender's cgroup's, and its instance process's too: set on the host,
    where the kernel enforces them (tests/platform/cgroups_test.cpp shows it refusing a task
    over the cap)."""

    @staticmethod
    def groups(pid):
        """controller -> the process's group path, from /proc/PID/cgroup (v1 and v2)."""
        out = {}
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for c in controllers.split(",") if controllers else ["unified"]:
                    out[c] = path
        return out

    @staticmethod
    def value(controller, group, name):
        base = "/sys/fs/cgroup" if controller == "unified" else f"/sys/fs/cgroup/{controller}"
        with open(f"{base}{group}/{name}") as f:
            return f.read().strip()

    def limits(self, pid):
        groups = self.groups(pid)
        if "pids" in groups:  # v1: a hierarchy per controller
            return (int(self.value("cpu", groups["cpu"], "cpu.shares")),
                    self.value("pids", groups["pids"], "pids.max"), groups["pids"])
        return (int(self.value("unified", groups["unified"], "cpu.weight")),
                self.value("unified", groups["unified"], "pids.max"), groups["unified"])

    def test_cpu_share_and_process_cap(self):
        self.kiln("run", "-d", "--name", "limited", "--cpu-shares", "100", "--pids-limit", "12", "apps",
                  "/bin/busybox", "sleep", "120")
        self.kiln("run", "-d", "--name", "plain", "apps", "/bin/busybox", "sleep", "120")
        limited = self.wait_for("limited", lambda i: i["state"] == "running" and "pid" in i)
        plain = self.wait_for("plain", lambda i: i["state"] == "running" and "pid" in i)
        self.assertEqual((limited["cpu_shares"], limited["pids_limit"]), (100, 12))
        self.assertEqual((plain["cpu_shares"], plain["pids_limit"]), (1024, 64))
        v1 = "pids" in self.groups(limited["pid"])
        shares, cap, group = self.limits(limited["pid"])
        self.assertEqual((shares, cap), (100 if v1 else 1 + (100 - 2) * 9999 // 262142, "12"))
        self.assertTrue(group.endswith("/" + limited["uuid"]), group)
        shares, cap, plain_group = self.limits(plain["pid"])
        self.assertEqual((shares, cap), (1024 if v1 else 1 + (1024 - 2) * 9999 // 262142, "64"))
        cgroup_dir = (lambda g: f"/sys/fs/cgroup/pids{g}") if v1 else (lambda g: f"/sys/fs/cgroup{g}")
        self.kiln("stop", "plain")  # a stopped instance holds no group; its next start makes it again
        self.assertFalse(os.path.exists(cgroup_dir(plain_group)))
        # On proc the instance is the tender's child process: in the same group.
        with open(f"/proc/{limited['pid']}/task/{limited['pid']}/children") as f:
            for child in map(int, f.read().split()):
                self.assertEqual(self.groups(child), self.groups(limited["pid"]))
        # Out of range: refused, naming the field, by the CLI and by the API.
        r = self.kiln("run", "--pids-limit", "1", "apps", ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--pids-limit", r.stderr)
        api = UnixHttp(os.path.join(self.state, "kilnd.sock"))
        api.request("POST", "/v1/instances", json.dumps({"image": "apps", "cpu_shares": 1}))
        answer = api.getresponse()
        self.assertEqual(answer.status, 400)
        self.assertIn("field 'cpu_shares' must be between 2 and 262144", answer.read().decode())
        self.kiln("rm", "-f", "limited", "plain")
        self.assertFalse(os.path.exists(cgroup_dir(group)))

    def test_a_host_without_cgroups_runs_instances_without_these_limits(self):
        self.env["KILN_CGROUP_ROOT"] = os.path.join(self.dir, "no-cgroups")
        self.kiln("run", "-d", "--name", "unlimited", "apps", "/bin/busybox", "sleep", "120")
        unlimited = self.wait_for("unlimited", lambda i: i["state"] == "running" and "pid" in i)
        self.assertNotIn(unlimited["uuid"], "".join(self.groups(unlimited["pid"]).values()))
        with open(os.path.join(self.state, "kilnd.log")) as f:
            self.assertIn("instances run without CPU shares and process caps: no cgroup hierarchy", f.read())
        self.kiln("rm", "-f", "unlimited")


class Detached(InstanceCase):
    def test_detached_instance_lifecycle(self):
        # (busybox sh would need execve, which the kernel does not have: the sleep applet itself.)
        name = self.kiln("run", "-d", "--name", "sleeper", "apps", "/bin/busybox", "sleep", "120").stdout.strip()
        self.assertEqual(name, "sleeper")
        first = self.wait_for("sleeper", lambda i: i["state"] == "running")
        self.assertRegex(self.kiln("ps").stdout, r"sleeper\s+running")
        r = self.kiln("rm", "sleeper", ok=False)
        self.assertIn("is running: stop it first", r.stderr)
        self.kiln("stop", "sleeper")
        self.assertNotIn("sleeper", self.kiln("ps").stdout)
        stopped = self.inspect("sleeper")
        # Unikraft Cloud's bits: kernel (1), platform (4) and user (8); no app exit code.
        self.assertEqual((stopped["state"], stopped["stop_reason"]), ("stopped", 1 | 4 | 8))
        self.assertNotIn("exit_code", stopped)
        self.assertRegex(self.kiln("ps", "-a").stdout, r"sleeper\s+stopped")
        self.kiln("start", "sleeper")
        again = self.wait_for("sleeper", lambda i: i["state"] == "running")
        self.assertNotEqual(again["pid"], first["pid"])
        self.kiln("rm", "-f", "sleeper")
        self.assertNotIn("sleeper", self.kiln("ps", "-a").stdout)

    def test_restart_policies(self):
        self.kiln("run", "-d", "--name", "flaky", "--restart", "on-failure", "apps", "/bin/hello", "3")
        flaky = self.wait_for("flaky", lambda i: i["restarts"] >= 2)
        self.assertEqual(flaky.get("exit_code", 3), 3)
        self.assertGreaterEqual(self.kiln("logs", "flaky").stdout.count("hello from a static Linux binary"), 2)
        self.kiln("run", "-d", "--name", "once", "--restart", "never", "apps", "/bin/hello", "3")
        once = self.wait_for("once", lambda i: i["state"] == "stopped")
        time.sleep(1)
        once = self.inspect("once")
        self.assertEqual((once["state"], once["exit_code"], once["restarts"]), ("stopped", 3, 0))
        self.assertEqual(once["stop_reason"], 1 | 2)  # kernel and app: it ended by itself
        deleted = self.api("DELETE", f"/v1/instances/{once['uuid']}")["data"]  # says how it ended
        self.assertEqual((deleted["state"], deleted["exit_code"]), ("deleted", 3), deleted)
        self.kiln("rm", "-f", "flaky")

    def test_metrics_as_json_and_as_prometheus_text_that_promtool_accepts(self):
        self.kiln("run", "-d", "--name", "measured", "apps", "/bin/busybox", "sleep", "120")
        self.kiln("run", "--name", "done", "apps")
        self.wait_for("measured", lambda i: i["state"] == "running")
        sock = os.path.join(self.state, "kilnd.sock")
        for path in ("/v1/instances/metrics", "/v1/instances/measured/metrics"):
            c = UnixHttp(sock)
            c.request("GET", path)
            text = c.getresponse().read().decode()
            c.close()
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr + text)
            self.assertRegex(text, r'instance_state\{instance_uuid="[0-9a-f-]+",instance_name="measured"\} 2\n')
        c = UnixHttp(sock)
        c.request("GET", "/v1/instances/metrics", headers={"Accept": "application/json"})
        metrics = {m["name"]: m for m in json.loads(c.getresponse().read())["data"]["instances"]}
        c.close()
        self.assertGreater(metrics["measured"]["rss_bytes"], 0)
        self.assertEqual((metrics["measured"]["state"], metrics["measured"]["start_count"]), ("running", 1))
        self.assertEqual((metrics["done"]["state_code"], metrics["done"]["uptime_ms"]), (0, 0))
        self.kiln("rm", "-f", "measured")

    def test_instances_outlive_a_killed_kilnd(self):
        self.kiln("run", "-d", "--name", "survivor", "apps", "/bin/busybox", "sleep", "120")
        before = self.wait_for("survivor", lambda i: i["state"] == "running")
        os.kill(self.kilnd_pid(), signal.SIGKILL)
        time.sleep(0.2)
        after = self.inspect("survivor")  # kiln starts a new kilnd
        self.assertEqual((after["state"], after.get("pid")), ("running", before["pid"]), self.why(after))
        self.kiln("stop", "survivor")
        self.assertEqual(self.inspect("survivor")["state"], "stopped")


class KillLoop(InstanceCase):
    KILLS = int(os.environ.get("KILN_KILLS", "50"))

    def start_kilnd(self):
        kilnd = subprocess.Popen([os.path.join(BUILD, "bin", "kilnd")], env=self.env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                if self.api("GET", "/v1/healthz")["status"] == "success":
                    return kilnd
            except OSError:
                pass
            self.assertLess(time.time(), deadline, "kilnd did not come up")
            time.sleep(0.005)

    def churn(self, rng, stop):
        """Creates, stops, starts and deletes instances until told to stop or kilnd dies."""
        n = 0
        while not stop.is_set():
            try:
                listed = self.api("GET", "/v1/instances")["data"]["instances"]
                running = [i for i in listed if i["state"] == "running"]
                choice = rng.random()
                if choice < 0.4 and len(running) < 4:
                    n += 1
                    self.api("POST", "/v1/instances", {"image": "apps", "name": f"c{rng.randrange(1 << 30)}",
                                                       "args": ["/bin/busybox", "sleep", "300"]})
                elif choice < 0.6 and running:
                    self.api("PUT", f"/v1/instances/{rng.choice(running)['uuid']}/stop",
                             {"drain_timeout_ms": rng.choice([0, 50])})
                elif choice < 0.8 and listed:
                    stopped = [i for i in listed if i["state"] == "stopped"]
                    if stopped:
                        self.api("PUT", f"/v1/instances/{rng.choice(stopped)['uuid']}/start")
                elif listed:
                    self.api("DELETE", f"/v1/instances/{rng.choice(listed)['uuid']}")
            except (OSError, http.client.HTTPException, ValueError):
                return  # kilnd was killed under us

    def vmm_pids(self):
        """kiln-vmm processes of this state directory -> their instance's uuid."""
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().decode().split("\0")
            except OSError:
                continue
            if "--status-file" in argv:
                path = argv[argv.index("--status-file") + 1]
                if path.startswith(self.state + "/instances/"):
                    found[int(pid)] = path.split("/")[-2]
        return found

    def test_kilnd_killed_at_random_moments_loses_nothing(self):
        rng = random.Random(int(os.environ.get("KILN_KILL_SEED", "1")))
        for _ in range(self.KILLS):
            kilnd = self.start_kilnd()
            stop = threading.Event()
            worker = threading.Thread(target=self.churn, args=(rng, stop))
            worker.start()
            time.sleep(rng.uniform(0, 0.4))
            kilnd.kill()
            kilnd.wait()
            stop.set()
            worker.join(30)

        kilnd = self.start_kilnd()
        time.sleep(0.5)  # one reconcile pass
        instances = self.api("GET", "/v1/instances")["data"]["instances"]
        self.assertGreater(len(instances), 0, "the loop never created an instance")
        for i in instances:
            self.assertIn(i["state"], ("running", "stopped"), i)
        running = {i["pid"]: i["uuid"] for i in instances if i["state"] == "running"}
        self.assertEqual(self.vmm_pids(), running, "kiln-vmm processes and running instances differ")
        with __import__("sqlite3").connect(os.path.join(self.state, "kiln.db")) as db:
            self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual([image["name"] for image in self.api("GET", "/v1/images")["data"]["images"]],
                         ["apps:latest"])
        for i in instances:
            self.assertEqual(self.api("DELETE", f"/v1/instances/{i['uuid']}")["status"], "success")
        self.assertEqual(self.vmm_pids(), {})
        kilnd.kill()
        kilnd.wait()


if __name__ == "__main__":
    unittest.main()
