"""What the kilnd benchmarks share (bench/services, bench/density): the kiln command line and
kilnd's API for one state directory, a first-byte probe, percentiles, and the memory of processes."""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from e2e_support import UnixHttp  # noqa: E402

REQUEST = b"GET /hello HTTP/1.1\r\nHost: kiln\r\nConnection: close\r\n\r\n"


class Kiln:
    def __init__(self, build, state):
        self.kiln = os.path.join(build, "bin", "kiln")
        self.state = state
        self.env = dict(os.environ, KILN_STATE_DIR=state)

    def __call__(self, *args):
        return subprocess.run([self.kiln, *args], env=self.env, check=True, capture_output=True, text=True).stdout

    def api(self, path):
        c = UnixHttp(os.path.join(self.state, "kilnd.sock"), timeout=60)
        c.request("GET", path)
        data = json.loads(c.getresponse().read())["data"]
        c.close()
        return data

    def wait_state(self, name, state, seconds=120):
        deadline = time.time() + seconds
        while self.api(f"/v1/instances/{name}")["state"] != state:
            if time.time() > deadline:
                sys.exit(f"{name} never became {state}")
            time.sleep(0.01)


def first_byte_ms(port):
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        s.sendall(REQUEST)
        if not s.recv(1):
            sys.exit("the service closed the connection without answering")
        elapsed = (time.perf_counter() - start) * 1e3
        while s.recv(65536):
            pass
    return elapsed


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def with_children(pids):
    """The pids and their children: kiln-proc's instance is its supervisor's child."""
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            out += [pid, *map(int, f.read().split())]
    return out


def _sum_kib(pids, file, field):
    total = 0
    for pid in with_children(pids):
        with open(f"/proc/{pid}/{file}") as f:
            total += int(re.search(field + r":\s+(\d+)", f.read()).group(1))
    return total


def cpu_seconds(pids):
    """User and system time the processes have used so far (all their threads)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pids):
    return _sum_kib(pids, "status", "VmRSS")


def pss_kib(pids):
    return _sum_kib(pids, "smaps_rollup", "Pss")
