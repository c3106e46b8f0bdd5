"""What the end-to-end tests (and bench/) share: HTTP over kilnd's unix socket, the kiln command
on a scratch state directory, and ending everything of such a directory."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time


def kiln_proc_beside_kernel(build):
    """kiln-proc of the build whose kernel is in use (KILN_KERNEL, else the build's own): a
    sanitized build has no kernel, and under AddressSanitizer, whose shadow memory lies where an
    instance's memory goes, no instance."""
    kernel = os.environ.get("KILN_KERNEL") or os.path.join(build, "kernel", "kiln.elf")
    return os.path.join(os.path.dirname(os.path.dirname(kernel)), "bin", "kiln-proc")


class UnixHttp(http.client.HTTPConnection):
    """HTTP over a unix socket (kilnd's API), as `curl --unix-socket` does."""

    def __init__(self, path, timeout=10):
        super().__init__("kiln", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def api_request(socket_path, method, path, body=None, raw=None, timeout=30):
    """One request to kilnd's API over its unix socket: (HTTP status, the answer's envelope).
    `body` is sent as JSON, `raw` (bytes or text) as it is."""
    c = UnixHttp(socket_path, timeout=timeout)
    try:
        c.request(method, path, raw if raw is not None else (json.dumps(body) if body is not None else None))
        r = c.getresponse()
        return r.status, json.loads(r.read())
    finally:
        c.close()


def start_kilnd(build, env, stderr=subprocess.DEVNULL, seconds=20):
    """The build's kilnd on env's KILN_STATE_DIR, once its API answers /v1/healthz."""
    kilnd = subprocess.Popen([os.path.join(build, "bin", "kilnd")], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    socket_path = os.path.join(env["KILN_STATE_DIR"], "kilnd.sock")
    deadline = time.time() + seconds
    while True:
        try:
            if api_request(socket_path, "GET", "/v1/healthz", timeout=2)[0] == 200:
                return kilnd
        except OSError:
            pass
        if kilnd.poll() is not None or time.time() > deadline:
            kilnd.kill()
            raise AssertionError(f"kilnd did not start (exit {kilnd.poll()})")
        time.sleep(0.01)


def build_hello_image(build, apps, env, app_dir, name="hello"):
    """The guest program `hello` (of `apps`) built by `kiln build` into the image NAME, from a
    Kraftfile in `app_dir`."""
    os.makedirs(os.path.join(app_dir, "rootfs", "bin"))
    shutil.copy(os.path.join(apps, "hello"), os.path.join(app_dir, "rootfs", "bin"))
    with open(os.path.join(app_dir, "Kraftfile"), "w") as f:
        f.write(f"spec: v0.6\nname: {name}\ncmd: /bin/hello\nrootfs: ./rootfs\n")
    subprocess.run([os.path.join(build, "bin", "kiln"), "build", app_dir], env=env, check=True, capture_output=True,
                   timeout=120)


class KilnCommand:
    """A TestCase mixin: self.kiln(...) runs the real kiln (the class's `kiln_binary`) with
    self.env (its KILN_STATE_DIR); unless ok=False, it must succeed."""

    kiln_binary = None

    def kiln(self, *args, ok=True, timeout=120):
        r = subprocess.run([self.kiln_binary, *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if ok:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r


def kilnd_pid(state_dir):
    """The pid of the kilnd that serves `state_dir`, or None."""
    r = subprocess.run(["pgrep", "-x", "kilnd"], capture_output=True, text=True)
    for pid in map(int, r.stdout.split()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"KILN_STATE_DIR={state_dir}".encode() in f.read().split(b"\0"):
                    return pid
        except OSError:
            pass
    return None


def remove_private_network(state_dir):
    """kilnd's network namespace outlives a kilnd that is killed (its guests would keep running):
    a test that kills kilnd removes it, once every kiln-vmm of the state directory is gone."""
    try:
        with open(os.path.join(state_dir, "netns")) as f:
            name = f.read().strip()
    except OSError:
        return
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def remove_cgroups(state_dir, seconds=10):
    """kilnd's cgroups (platform/instances/cgroups.h) are named as its namespace; a killed kilnd
    leaves them, empty once its tenders are gone. A killed tender stays in its group until it is
    reaped, and PID 1 reaps orphans late here: the removal is retried for a while."""
    try:
        with open(os.path.join(state_dir, "netns")) as f:
            name = f.read().strip()
    except OSError:
        return
    parents = [p for p in (f"/sys/fs/cgroup/cpu/{name}", f"/sys/fs/cgroup/pids/{name}", f"/sys/fs/cgroup/{name}")
               if os.path.isdir(p)]
    deadline = time.time() + seconds
    while parents:
        for parent in list(parents):
            for entry in os.scandir(parent):
                if entry.is_dir():
                    try:
                        os.rmdir(entry.path)
                    except OSError:
                        pass
            try:
                os.rmdir(parent)
                parents.remove(parent)
            except OSError:
                pass
        if not parents or time.time() > deadline:
            return
        time.sleep(0.1)


def end_state(state_dir):
    """Kills the kilnd of `state_dir` and every kiln-vmm it started, then removes its network
    and its cgroups."""
    pid = kilnd_pid(state_dir)
    if pid:
        os.kill(pid, signal.SIGKILL)
    subprocess.run(["pkill", "-KILL", "-f", state_dir], check=False)  # its kiln-vmms
    time.sleep(0.2)
    remove_private_network(state_dir)
    remove_cgroups(state_dir)
