"""HTTP over a unix socket (kilnd's API), as `curl --unix-socket` does."""
import http.client
import os
import socket
import subprocess


class UnixHttp(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("kiln", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def remove_private_network(state_dir):
    """kilnd's network namespace outlives a kilnd that is killed (its guests would keep running):
    a test that kills kilnd removes it, once every kiln-vmm of the state directory is gone."""
    try:
        with open(os.path.join(state_dir, "netns")) as f:
            name = f.read().strip()
    except OSError:
        return
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)
