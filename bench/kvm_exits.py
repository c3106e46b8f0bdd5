"""VM exits by reason, counted the same way for every monitor (kiln-vmm, QEMU): the host kernel's
kvm:kvm_exit tracepoint, recorded by perf for the monitor's threads. Under emulation (scripts/
with-kvm) a time says little, a count holds; and a count taken outside the monitors needs no
statistics of their own. Shared by bench/boot and bench/net."""
import collections
import os
import re
import subprocess
import sys
import tempfile
import time


def ensure_tracefs():
    """perf reads the tracepoints' formats from tracefs; a fresh test VM may not have it mounted."""
    if not os.path.isdir("/sys/kernel/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], capture_output=True)
    if not os.path.isdir("/sys/kernel/tracing/events/kvm"):
        sys.exit("bench: no kvm tracepoints in /sys/kernel/tracing/events (tracefs mounted, kvm loaded?)")


def record_argv(data):
    """The command line that records the exits of the command after it (and of its children)
    into `data`, stamped with CLOCK_MONOTONIC (Python's time.monotonic()). perf follows the
    monitor's threads from its start; recording a process already running (-p, or -a sorted by
    process) saw nothing in the test VM's kernel."""
    return ["perf", "record", "-q", "-k", "mono", "-e", "kvm:kvm_exit", "-o", data, "--"]


def reasons_in(data, window=None, timeout=120):
    """The exits a recording holds, by reason (perf script prints `reason NAME` for each); only
    those within `window` (time.monotonic() seconds, from, to) if given."""
    script = subprocess.run(["perf", "script", "-i", data, "-F", "time,trace"], capture_output=True, text=True,
                            timeout=timeout).stdout
    reasons = collections.Counter()
    for line in script.splitlines():
        found = re.match(r"\s*([\d.]+):\s.*reason (\w+)", line)
        if found and (window is None or window[0] <= float(found.group(1)) <= window[1]):
            reasons[found.group(2)] += 1
    return reasons


def exits_of_run(cmd, timeout=120):
    """The exits, by reason, of one run of `cmd`."""
    with tempfile.TemporaryDirectory(prefix="kiln-bench-exits-") as work:
        data = os.path.join(work, "perf.data")
        recorded = subprocess.run([*record_argv(data), *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, timeout=timeout)
        if not os.path.exists(data):
            sys.exit(f"bench: perf record of {cmd[0]} failed: {recorded.stderr.strip()}")
        reasons = reasons_in(data, timeout=timeout)
    if not reasons:
        sys.exit(f"bench: perf saw no KVM exit of {cmd[0]}")
    return reasons


def monitor_under(recorder):
    """The monitor that `recorder` (a perf record, maybe behind `ip netns exec`, which execs)
    started: its child."""
    for _ in range(200):
        with open(f"/proc/{recorder.pid}/task/{recorder.pid}/children") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    sys.exit("bench: the monitor under perf did not start")


def table(columns):
    """A markdown table of reasons (rows, most frequent first) by monitor (columns: name -> Counter)."""
    reasons = sorted({r for counts in columns.values() for r in counts},
                     key=lambda r: -max(c.get(r, 0) for c in columns.values()))
    lines = ["| reason | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for reason in reasons:
        lines.append(f"| {reason} | " + " | ".join(str(c.get(reason, 0)) for c in columns.values()) + " |")
    lines.append("| all | " + " | ".join(str(sum(c.values())) for c in columns.values()) + " |")
    return "\n".join(lines)
