"""A test network: a namespace with a bridge, a tap per guest, and kiln-vmm started inside it.

Names carry the owner's pid ("kt<pid>...") and stale ones from dead test processes are swept at
start, so a crashed test leaves nothing behind for long.
"""
import os
import signal
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
        self.peers = []  # namespaces of host processes on the bridge (add_peer)

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
                # The whole process group: `timeout` (start_qemu) makes one of its own, and its
                # QEMU child would outlive a kill of `timeout` alone.
                try:
                    if os.getpgid(p.pid) == p.pid:
                        os.killpg(p.pid, signal.SIGKILL)
                    else:
                        p.kill()
                except ProcessLookupError:
                    pass
            p.wait()
            for stream in (getattr(p, "log", None), p.stdout):
                if stream:
                    stream.close()
        for peer in self.peers:
            ip("netns", "del", peer, check=False)
        ip("netns", "del", self.name, check=False)

    def add_peer(self, address):
        """A namespace of its own for a host process on the bridge, at `address` (a peer measured
        beside a guest: the same path through the bridge, a veth instead of a tap). Its name."""
        peer = f"{self.name}-p{len(self.peers)}"
        ip("netns", "add", peer)
        self.peers.append(peer)
        veth = f"veth{len(self.peers)}"
        ip("-n", self.name, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", peer)
        ip("-n", self.name, "link", "set", veth, "master", "br0")
        ip("-n", self.name, "link", "set", veth, "up")
        ip("-n", peer, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", peer, "link", "set", "eth0", "up")
        ip("-n", peer, "link", "set", "lo", "up")
        return peer

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

    def qemu_argv(self, kernel, initrd, tap, guest_ip, cmdline, memory_mib=512, accel="tcg"):
        """QEMU microvm (the `hw` backend) running the kernel with a virtio-net card on `tap`.
        QEMU passes its virtio-mmio transports on the command line only when it boots through
        its option ROM, which these runs leave out: the one card is named here. With
        ioapic2=off and its ACPI tables (microvm's default) microvm has 8 transports on IRQs
        16-23 (5-12 only with acpi=off), and the first device plugged takes the last one: a
        wrong IRQ here leaves the card without interrupts, every frame waiting for the network
        thread's 100 ms tick. The card's MAC comes from the tap's number (add_tap): the same tap, the same
        card, as a restore needs."""
        mac = "52:54:00:4b:%02x:%02x" % (int(tap[len("tap"):]) % 256, os.getpid() % 256)
        return ["qemu-system-x86_64",
                "-M", "microvm,x-option-roms=off,rtc=off,ioapic2=off", "-accel", accel,
                "-cpu", "max" if accel == "tcg" else "host,-arch-capabilities",
                "-m", str(memory_mib), "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
                "-no-reboot", "-global", "virtio-mmio.force-legacy=false",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel, "-initrd", initrd,
                "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-device,netdev=n0,mac={mac}",
                "-append", f"virtio_mmio.device=512@0xfeb00e00:23 kiln.ip={guest_ip}/24 kiln.gw={self.host_ip} "
                           f"kiln.dns={self.host_ip} {cmdline}"]

    def start_qemu(self, kernel, initrd, guest_ip, cmdline, memory_mib=512, timeout=600, accel="tcg", extra=()):
        """Starts the kernel under QEMU (qemu_argv, then `extra`) on a new tap of this network, for
        at most `timeout` seconds."""
        tap = self.add_tap()
        argv = ["timeout", "-s", "KILL", str(timeout),
                *self.qemu_argv(kernel, initrd, tap, guest_ip, cmdline, memory_mib, accel), *extra]
        log = open(f"/tmp/{self.name}-vm{len(self.vms)}.log", "w+")
        p = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT)
        p.log = log
        self.vms.append(p)
        return p

    def wait_for_http(self, url, vm, timeout=120):
        """Until `url` answers (a guest under QEMU has no ready event); False if it never does."""
        deadline = time.time() + timeout
        while time.time() < deadline and vm.poll() is None:
            if self.run(["curl", "-s", "-o", "/dev/null", "-m", "2", url]).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    @staticmethod
    def output(p):
        """What the VM printed, and how it ended if it has (a silent end says more this way)."""
        p.log.seek(0)
        text = p.log.read()
        status = p.poll()
        if status is not None:
            text += f"\n[{'killed by signal ' + str(-status) if status < 0 else 'exited with status ' + str(status)}]"
        return text
