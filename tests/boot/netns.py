"""A test network: a namespace with a bridge, a tap per guest, and kiln-vmm started inside it.

Names carry the owner's pid ("kt<pid>...") and stale ones from dead test processes are swept at
start, so a crashed test leaves nothing behind for long.
"""
import os
import re
import subprocess
import time

PREFIX = "kt"


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def sweep_stale():
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        m = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            ip("netns", "del", name, check=False)


class TestNetwork:
    """with TestNetwork("web") as net: net.start_vm(...); net.run(["curl", ...])"""

    def __init__(self, tag, subnet="10.77.0"):
        self.name = f"{PREFIX}{os.getpid()}-{tag}"
        self.subnet = subnet
        self.host_ip = f"{subnet}.1"
        self.vms = []
        self.helpers = []  # processes started with popen(), ended with the network
        self.taps = 0

    def __enter__(self):
        sweep_stale()
        ip("netns", "del", self.name, check=False)
        ip("netns", "add", self.name)
        n = ["-n", self.name]
        ip(*n, "link", "set", "lo", "up")
        # A fixed address: one the kernel picks follows the lowest port's and changes when a tap
        # with a lower one joins, leaving guests that cached it (a restored snapshot) unheard.
        ip(*n, "link", "add", "br0", "address", "02:00:0a:4d:00:01", "type", "bridge")
        ip(*n, "addr", "add", f"{self.host_ip}/24", "dev", "br0")
        ip(*n, "link", "set", "br0", "up")
        return self

    def __exit__(self, *exc):
        for p in self.vms + self.helpers:
            if p.poll() is None:
                p.kill()
            p.wait()
            for stream in (getattr(p, "log", None), p.stdout):
                if stream:
                    stream.close()
        ip("netns", "del", self.name, check=False)

    def add_tap(self):
        tap = f"tap{self.taps}"
        self.taps += 1
        n = ["-n", self.name]
        ip(*n, "tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr")
        ip(*n, "link", "set", tap, "master", "br0")
        ip(*n, "link", "set", tap, "up")
        # Looking the tap up by name makes the kernel finish its deferred carrier processing;
        # otherwise the first second of traffic may be dropped at the tap's qdisc.
        ip(*n, "link", "show", tap)
        return tap

    def command(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv, timeout=60, **kw):
        return subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout, **kw)

    def popen(self, argv, **kw):
        p = subprocess.Popen(self.command(argv), **kw)
        self.helpers.append(p)
        return p

    def start_vm(self, vmm_argv, guest_ip, cmdline, net_extra="", ready_timeout=60):
        """Starts kiln-vmm with a tap; waits until the guest announces it listens (or exits)."""
        tap = self.add_tap()
        net = f"tap={tap}" + (f",{net_extra}" if net_extra else "")
        argv = [*vmm_argv, "--net", net, "--cmdline",
                f"kiln.ip={guest_ip}/24 kiln.gw={self.host_ip} kiln.dns={self.host_ip} {cmdline}"]
        log = open(f"/tmp/{self.name}-vm{len(self.vms)}.log", "w+")
        p = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT)
        p.log = log
        self.vms.append(p)
        deadline = time.time() + ready_timeout
        while time.time() < deadline:
            log.seek(0)
            if "guest ready on" in log.read() or p.poll() is not None:
                break
            time.sleep(0.05)
        return p

    @staticmethod
    def output(p):
        p.log.seek(0)
        return p.log.read()
