#!/usr/bin/env python3
"""Services, the load balancer, scale-to-zero and the private network, through the real kiln, a
real kilnd and real guests: HTTP clients on the host's loopback, guests on kilnd's private
network, on the host's default platform (kvm where /dev/kvm works, else proc; KILN_PLATFORM
chooses). Needs root.

Timings are never asserted here (bench/services/run measures them); every wait is bounded."""
import concurrent.futures
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from e2e_support import KilnCommand, UnixHttp, end_state

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
KILN = os.path.join(BUILD, "bin", "kiln")
APPS = os.path.join(BUILD, "tests", "guest-apps")
WAKE_CYCLES = int(os.environ.get("KILN_WAKE_CYCLES", "100"))


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def http_get(port, path="/hello", timeout=60):
    """One GET through the load balancer; the body, or the exception's text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body.decode()


class ServiceCase(KilnCommand, unittest.TestCase):
    kiln_binary = KILN

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-e2e-services-")
        self.state = os.path.join(self.dir, "state")
        self.env = dict(os.environ, KILN_STATE_DIR=self.state)
        app = os.path.join(self.dir, "web")
        os.makedirs(os.path.join(app, "rootfs", "bin"))
        os.makedirs(os.path.join(app, "rootfs", "www"))
        for program in ("http-server", "echo_server", "net_client"):
            shutil.copy(os.path.join(APPS, program), os.path.join(app, "rootfs", "bin", program))
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write('spec: v0.6\nname: web\ncmd: ["/bin/http-server", "8080", "/www"]\nrootfs: ./rootfs\n')
        self.kiln("build", app)
        self.port = random.randrange(20000, 30000)

    def tearDown(self):
        end_state(self.state)
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, path):
        c = UnixHttp(os.path.join(self.state, "kilnd.sock"))
        c.request("GET", path)
        body = json.loads(c.getresponse().read())
        c.close()
        return body["data"]

    def text(self, path):
        c = UnixHttp(os.path.join(self.state, "kilnd.sock"))
        c.request("GET", path)
        body = c.getresponse().read().decode()
        c.close()
        return body

    def state_of(self, name):
        return self.api(f"/v1/instances/{name}")["state"]

    def wait_state(self, name, state, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.state_of(name) == state:
                return
            time.sleep(0.02)
        self.fail(f"{name} never became {state}: {self.api('/v1/instances/' + name)}{self.logs(name)}")

    def logs(self, name):
        """What kilnd, the instance and its monitor said (a crash's reason is in vmm.log's last
        lines, a wake that did not go as planned in kilnd.log), for a failure's message."""
        uuid = self.api("/v1/instances/" + name)["uuid"]
        text = ""
        for log in ("kilnd.log", f"instances/{uuid}/console.log", f"instances/{uuid}/vmm.log"):
            path = os.path.join(self.state, log)
            text += f"\n--- {log} ---\n" + (read(path)[-3000:] if os.path.exists(path) else "(none)")
        return text

    def scale_to_zero_service(self, cooldown="300ms", *extra):
        self.kiln("run", "-d", "-p", f"{self.port}:8080", "--scale-to-zero", "on", "--scale-to-zero-cooldown",
                  cooldown, "--name", "web", *extra, "web")


class ScaleToZero(ServiceCase):
    def test_first_request_wakes_it_and_it_returns_to_standby(self):
        self.scale_to_zero_service()
        # Ready, snapshotted, idle for the cooldown: standby before the first request. (A request
        # sent at once may find it already running, as instances now start sooner, and then no
        # wake is counted for it.)
        self.wait_state("web", "standby")
        self.assertEqual(http_get(self.port), ("HTTP/1.1 200 OK", "hello from kiln\n"))
        self.wait_state("web", "standby")
        self.assertNotIn("web", self.kiln("ps").stdout)       # standby is not running...
        self.assertRegex(self.kiln("ps", "-a").stdout, r"web\s+standby")  # ...but is there
        self.assertTrue(os.path.exists(os.path.join(self.state, "instances",
                                                    self.api("/v1/instances/web")["uuid"], "snapshot", "state")))
        began = time.monotonic()
        self.assertEqual(http_get(self.port), ("HTTP/1.1 200 OK", "hello from kiln\n"))
        client_ms = (time.monotonic() - began) * 1000
        self.check_wake_trace(client_ms)
        # What the balancer saw, per instance and per service, in text promtool accepts; each
        # wake's steps complete once the tender has told its own (after the connection).
        deadline = time.monotonic() + 10
        while 'step="total"} 2\n' not in self.text("/v1/services/metrics") and time.monotonic() < deadline:
            time.sleep(0.05)
        instances, services = self.text("/v1/instances/metrics"), self.text("/v1/services/metrics")
        for text in (instances, services):
            check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
            self.assertEqual(check.returncode, 0, check.stdout + check.stderr + text)
        self.assertRegex(instances, r'instance_nreqs_total\{[^}]*instance_name="web"\} 2\n')
        self.assertRegex(instances, r'instance_wakeup_latency_seconds_count\{[^}]*instance_name="web"\} 2\n')
        self.assertRegex(services, r'service_connections_total\{[^}]*service_name="web"\} 2\n')
        self.assertRegex(services, r'service_wake_step_seconds_count\{[^}]*service_name="web",step="total"\} 2\n')
        self.assertRegex(services, r'service_wake_step_seconds_count\{[^}]*service_name="web",step="connect"\} 2\n')

    def check_wake_trace(self, client_ms, prepared=True):
        """The last wake, step by step (platform/services/wake_trace.h), as `kiln service inspect`
        shows it: contiguous steps from the held connection to its connect, inside what the
        client waited. On proc a wake resumes the restore kilnd prepared at the standby before
        (`prepared`): the tender's earlier steps were not on its path."""
        web = self.api("/v1/instances/web")
        wake = json.loads(self.kiln("service", "inspect", "web").stdout)[0]["last_wake"]
        self.assertEqual((wake["instance"], wake["platform"], wake["restored"]), (web["uuid"], web["platform"], True))
        names = [step["step"] for step in wake["steps"]]
        proc = web["platform"] == "proc"
        middle = ["start"]
        if proc:
            middle = ["resume"] if prepared else ["launch", "load", "confine", "fork", "resume", "notify", "route"]
            # The tender's own steps arrive after the connection: wait for them.
            deadline = time.monotonic() + 10
            while "start" in names and time.monotonic() < deadline:
                time.sleep(0.05)
                wake = json.loads(self.kiln("service", "inspect", "web").stdout)[0]["last_wake"]
                names = [step["step"] for step in wake["steps"]]
        if not proc:
            middle.append("route")
        self.assertEqual(names, ["queue", "spawn", *middle, "connect"], f"{wake}{self.logs('web')}")
        self.assertEqual(wake["prepared"], proc and prepared, f"{wake}{self.logs('web')}")
        for step in wake["steps"]:
            self.assertGreaterEqual(step["ms"], 0, wake)
        self.assertAlmostEqual(sum(step["ms"] for step in wake["steps"]), wake["total_ms"], delta=0.01)
        self.assertLess(wake["total_ms"], client_ms, wake)

    def prepared_tenders(self, uuid):
        """The pids of the tenders holding a prepared restore of instance `uuid` (kiln-proc --paused)."""
        pids = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                argv = read(f"/proc/{pid}/cmdline").split("\0")
            except OSError:
                continue
            if "--paused" in argv and any(uuid in arg for arg in argv):
                pids.append(int(pid))
        return pids

    def test_a_prepared_wake_that_cannot_be_used_is_a_restore_as_before(self):
        self.scale_to_zero_service()
        self.wait_state("web", "standby")
        uuid = self.api("/v1/instances/web")["uuid"]
        if self.api("/v1/instances/web")["platform"] != "proc":
            self.assertEqual(self.prepared_tenders(uuid), [])  # kvm instances are not prepared
            return
        deadline = time.monotonic() + 10
        while not self.prepared_tenders(uuid) and time.monotonic() < deadline:
            time.sleep(0.02)
        prepared = self.prepared_tenders(uuid)
        self.assertEqual(len(prepared), 1, "standby prepares the next wake")
        os.kill(prepared[0], signal.SIGKILL)
        while os.path.exists(f"/proc/{prepared[0]}") and read(f"/proc/{prepared[0]}/stat").split(") ")[1][0] != "Z":
            time.sleep(0.01)  # gone: its control socket refuses the resume
        began = time.monotonic()
        self.assertEqual(http_get(self.port), ("HTTP/1.1 200 OK", "hello from kiln\n"))
        self.check_wake_trace((time.monotonic() - began) * 1000, prepared=False)
        self.wait_state("web", "standby")  # and the next one is prepared again, and used
        began = time.monotonic()
        self.assertEqual(http_get(self.port), ("HTTP/1.1 200 OK", "hello from kiln\n"))
        self.check_wake_trace((time.monotonic() - began) * 1000)

    def test_wake_cycles_lose_no_request(self):
        self.scale_to_zero_service("100ms")
        for cycle in range(WAKE_CYCLES):
            self.wait_state("web", "standby")
            status, body = http_get(self.port, timeout=60)
            self.assertEqual((cycle, status, body), (cycle, "HTTP/1.1 200 OK", "hello from kiln\n"))
        service = self.api("/v1/services/web")
        self.assertEqual([i["name"] for i in service["instances"]], ["web"])

    def test_200_concurrent_clients_against_a_standby_service(self):
        self.scale_to_zero_service("2s")
        http_get(self.port)  # the first boot and its snapshot
        self.wait_state("web", "standby")

        def one(i):
            try:
                return http_get(self.port)
            except OSError as e:
                return ("error", str(e))

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            answers = list(pool.map(one, range(200)))
        wrong = [a for a in answers if a != ("HTTP/1.1 200 OK", "hello from kiln\n")]
        self.assertEqual(wrong, [], f"{len(wrong)} of 200 wrong")

    def test_an_instance_killed_mid_request_fails_that_request_and_the_service_recovers(self):
        self.scale_to_zero_service("30s")
        http_get(self.port)
        pid = self.api("/v1/instances/web")["pid"]
        held = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        held.sendall(b"GET /hello HTTP/1.1\r\nHost: kiln\r\n")  # half a request: the server waits
        time.sleep(0.5)
        # The whole process group kilnd started (kiln-vmm, or kiln-proc's supervisor and its
        # instance): kiln-proc's instance dies with its supervisor, but only once that one's exit
        # is done, a moment in which it could still answer.
        os.killpg(pid, signal.SIGKILL)
        try:
            held.sendall(b"\r\n")
            # b"" (closed) or a reset, once kilnd sees the instance end: never a hang (a timeout
            # here fails the test) or a wrong answer.
            answer = held.recv(1)
        except (ConnectionResetError, BrokenPipeError):
            answer = b""
        held.close()
        self.assertEqual(answer, b"")
        self.wait_state("web", "stopped")
        self.assertEqual(http_get(self.port), ("HTTP/1.1 200 OK", "hello from kiln\n"))  # woken again


class Volumes(ServiceCase):
    """A counter on a volume (tests/guest-apps/counter_server.c), each increment fsync'd before the
    answer: every acknowledged one is there after a stop and start, a kill -9 of the instance, and
    a sleep and wake of scale-to-zero; the volume passes e2fsck afterwards."""

    def setUp(self):
        super().setUp()
        app = os.path.join(self.dir, "counter")
        os.makedirs(os.path.join(app, "rootfs", "bin"))
        shutil.copy(os.path.join(APPS, "counter_server"), os.path.join(app, "rootfs", "bin", "counter_server"))
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write('spec: v0.6\nname: counter\ncmd: ["/bin/counter_server", "8080", "/data/counter"]\n'
                    'rootfs: ./rootfs\n')
        self.kiln("build", app)

    def get(self, path):
        status, body = http_get(self.port, path)
        self.assertEqual(status, "HTTP/1.1 200 OK", body + self.logs("counter"))
        return int(body)

    def test_every_acknowledged_write_survives_stop_kill_9_and_scale_to_zero(self):
        self.kiln("volume", "create", "data", "--size", "32M")
        self.kiln("run", "-d", "-v", "data:/data", "-p", f"{self.port}:8080", "--scale-to-zero", "on",
                  "--scale-to-zero-cooldown", "300ms", "--name", "counter", "counter")
        self.assertEqual([self.get("/add") for _ in range(3)], [1, 2, 3])
        # Asleep (a snapshot taken as it went: its volume moved on since it became ready), then
        # woken by the next request with what it had written.
        self.wait_state("counter", "standby")
        self.assertEqual(self.get("/get"), 3)
        self.assertEqual(self.get("/add"), 4)
        # Killed outright while running: what it acknowledged is on the volume.
        os.killpg(self.api("/v1/instances/counter")["pid"], signal.SIGKILL)
        self.wait_state("counter", "stopped")
        self.assertEqual(self.get("/add"), 5, self.logs("counter"))  # the balancer starts it again
        self.kiln("stop", "counter")
        self.kiln("start", "counter")
        self.assertEqual(self.get("/get"), 5)
        self.kiln("rm", "-f", "counter")
        volume = json.loads(self.kiln("volume", "inspect", "-o", "json", "data").stdout)[0]  # a list, as docker's
        copy = os.path.join(self.dir, "check.ext4")
        shutil.copyfile(volume["file"], copy)
        fixed = subprocess.run(["e2fsck", "-fy", copy], capture_output=True, text=True)
        self.assertLessEqual(fixed.returncode, 1, fixed.stdout)
        checked = subprocess.run(["e2fsck", "-fn", copy], capture_output=True, text=True)
        self.assertEqual(checked.returncode, 0, checked.stdout)


class PrivateNetwork(ServiceCase):
    def test_instances_reach_each_other_by_name(self):
        self.kiln("run", "-d", "--name", "peer", "web", "/bin/echo_server", "7000")
        vmm_log = os.path.join(self.state, "instances", self.api("/v1/instances/peer")["uuid"], "vmm.log")
        deadline = time.time() + 60
        while "guest ready" not in read(vmm_log):  # kiln-vmm's word for the app's listen()
            self.assertLess(time.time(), deadline, "the echo server never listened")
            time.sleep(0.1)
        # By its full name, then by the bare name through the search domain kilnd gives guests.
        for name in ("peer.internal", "peer"):
            client = "client-" + name.replace(".", "-")
            r = self.kiln("run", "--name", client, "web", "/bin/net_client", name, "7000", "ping " + name)
            self.assertIn(f"net_client: {name} is {self.api('/v1/instances/peer')['private_ip']}", r.stdout)
            self.assertIn("ping " + name, r.stdout.split("reply:", 1)[-1], r.stdout)
        self.assertNotEqual(self.api("/v1/instances/peer")["private_ip"],
                            self.api("/v1/instances/client-peer")["private_ip"])

    def test_timeout_s_answers_once_the_app_listens(self):
        self.kiln("ps")  # starts kilnd
        c = UnixHttp(os.path.join(self.state, "kilnd.sock"), timeout=120)
        c.request("POST", "/v1/instances", json.dumps({"image": "web", "name": "quick", "timeout_s": 60,
                                                        "args": ["/bin/echo_server", "7000"]}))
        instance = json.loads(c.getresponse().read())["data"]
        c.close()
        with open(os.path.join(self.state, "netns")) as f:
            netns = f.read().strip()
        probe = ("import socket,sys; s=socket.create_connection((sys.argv[1], 7000), timeout=5); "
                 "s.sendall(b'up'); print(s.recv(2).decode())")
        r = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe, instance["private_ip"]],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.stdout.strip(), "up", r.stderr)  # no wait, no retry: it listened already

    def test_guests_cannot_reach_the_host(self):
        # A host service on every address of the host: the guest has no route to any of them.
        host = socket.socket()
        host.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        host.bind(("0.0.0.0", self.port))
        host.listen()
        with host:
            r = self.kiln("run", "--name", "prober", "web", "/bin/net_client", "10.77.0.1", str(self.port), "x",
                          ok=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("reply:", r.stdout)


class Autoscale(ServiceCase):
    def running(self, service):
        return sum(1 for i in self.api(f"/v1/services/{service}")["instances"] if i["state"] == "running")

    def test_scales_between_1_and_4_under_a_load_past_one_instances_soft_limit(self):
        self.kiln("service", "create", "auto", "-p", f"{self.port}:7000", "--soft-limit", "2", "--autoscale-min", "1",
                  "--autoscale-max", "4", "--autoscale-cooldown", "500ms")
        self.kiln("run", "-d", "--service", "auto", "--name", "auto", "web", "/bin/echo_server", "7000")
        held = []
        try:
            # Long connections, added while the group grows: 12 is past the soft limit of 4 x 2.
            deadline = time.time() + 180
            while self.running("auto") < 4 or len(held) < 12:
                self.assertLess(time.time(), deadline, f"{self.running('auto')} running with {len(held)} connections")
                if len(held) < 12:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                    s.sendall(b"x")
                    self.assertEqual(s.recv(1), b"x")
                    held.append(s)
                time.sleep(0.1)
            time.sleep(1)
            self.assertEqual(self.running("auto"), 4, "never past its maximum")
            for s in held:  # every connection still works, wherever it went
                s.sendall(b"y")
                self.assertEqual(s.recv(1), b"y")
        finally:
            for s in held:
                s.close()
        deadline = time.time() + 60
        while self.running("auto") > 1:  # scale in, down to the minimum
            self.assertLess(time.time(), deadline, self.api("/v1/services/auto"))
            time.sleep(0.1)
        time.sleep(1.5)
        self.assertEqual(self.running("auto"), 1)
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(b"still here")
            self.assertEqual(s.recv(64), b"still here")


class Compose(ServiceCase):
    def test_two_services_that_talk_to_each_other(self):
        project = os.path.join(self.dir, "project")
        os.makedirs(project)
        with open(os.path.join(project, "compose.yaml"), "w") as f:
            f.write(f"""services:
  echo:
    image: web
    command: /bin/echo_server 7000
    ports: ["{self.port}:7000"]
    mem_limit: 64m
  client:
    image: web
    # By the bare service name, as on a docker network; retried until echo listens.
    command: ["/bin/net_client", "echo", "7000", "hello from client"]
    environment: {{ROLE: client}}
    restart: on-failure
    depends_on: [echo]
""")
        env = dict(self.env, KILN_BACKOFF_MS="100")
        run = lambda *a: subprocess.run([KILN, "compose", *a], cwd=project, env=env, capture_output=True, text=True,
                                        timeout=120)
        up = run("up", "-d")
        self.assertEqual(up.returncode, 0, up.stdout + up.stderr)
        deadline = time.time() + 90
        while "reply: hello from client" not in run("logs").stdout:
            self.assertLess(time.time(), deadline, run("logs").stdout)
            time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:  # its published port
            s.sendall(b"from the host")
            self.assertEqual(s.recv(64), b"from the host")
        ps = run("ps")
        self.assertRegex(ps.stdout, r"echo\s+running")
        down = run("down")
        self.assertEqual(down.returncode, 0, down.stdout + down.stderr)
        self.assertEqual(self.api("/v1/instances")["instances"], [])
        self.assertEqual(self.api("/v1/services")["services"], [])


class HttpHandler(ServiceCase):
    def test_a_keep_alive_client_is_balanced_per_request(self):
        self.kiln("service", "create", "h", "-p", f"{self.port}:8080/http")
        for name in ("h1", "h2"):
            self.kiln("run", "-d", "--service", "h", "--name", name, "web")
        for name in ("h1", "h2"):
            self.wait_state(name, "running")
        # "running" is not "ready": the balancer takes an instance once its app listens. Until both
        # have served a request of their own, the keep-alive test below could only reach one.
        deadline = time.time() + 120
        while min(self.served().values(), default=0) == 0:
            self.assertLess(time.time(), deadline, f"a backend never came up: {self.served()}")
            try:
                http_get(self.port, timeout=10)
            except OSError:
                time.sleep(0.2)
        before = self.served()
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            stream = s.makefile("rb")
            for i in range(10):  # one connection, ten requests
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: kiln\r\n\r\n")
                status = stream.readline()
                length = 0
                while (line := stream.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.assertEqual((i, status, stream.read(length)), (i, b"HTTP/1.1 200 OK\r\n", b"hello from kiln\n"))
        served = {name: n - before[name] for name, n in self.served().items()}
        self.assertGreater(served["h1"], 2, served)  # both took part of the one connection's requests
        self.assertGreater(served["h2"], 2, served)

    def served(self):
        return {i["name"]: i["nreqs"] for i in self.api_json("/v1/instances/metrics")["instances"]}

    def api_json(self, path):
        c = UnixHttp(os.path.join(self.state, "kilnd.sock"))
        c.request("GET", path, headers={"Accept": "application/json"})
        body = json.loads(c.getresponse().read())
        c.close()
        return body["data"]


class Services(ServiceCase):
    def test_service_commands_and_errors(self):
        self.kiln("service", "create", "api", "-p", f"{self.port}:8080")
        self.assertRegex(self.kiln("service", "ls").stdout, rf"api\s+{self.port}->8080\s+0")
        self.assertEqual(json.loads(self.kiln("service", "inspect", "api").stdout)[0]["name"], "api")
        r = self.kiln("service", "create", "again", "-p", f"{self.port}:80", ok=False)
        self.assertEqual(r.stderr, f"kiln: port {self.port} is service 'api's\n")
        r = self.kiln("run", "-d", "-p", f"{self.port + 1}:8080/tls", "web", ok=False)
        self.assertIn("expected HOST:GUEST, HOST:GUEST/http or HOST:GUEST/tcp", r.stderr)
        self.kiln("service", "rm", "api")
        self.assertNotIn("api", self.kiln("service", "ls").stdout)


if __name__ == "__main__":
    unittest.main()
