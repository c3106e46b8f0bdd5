"""The control socket of kiln-vmm and kiln-proc (docs/control-socket.md), for the boot tests: one
JSON object per line each way. `Control` keeps a connection (requests, and the events that come
between); `request` is one request on a connection of its own.
"""
import json
import socket
import time


class Control:
    """A client of one control socket (kiln-vmm's or kiln-proc's), kept connected."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.settimeout(timeout)
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        self.buffer = b""
        self.events = []  # events that came while waiting for an answer

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("the control socket closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def request(self, **request):
        """Sends a request; returns its answer. Events that come first are kept for event()."""
        self.sock.sendall((json.dumps(request) + "\n").encode())
        while True:
            message = self.line()
            if "event" not in message:
                return message
            self.events.append(message)

    def event(self, name):
        while True:
            message = self.events.pop(0) if self.events else self.line()
            if message.get("event") == name:
                return message

    def close(self):
        self.sock.close()


def request(path, timeout=30, **fields):
    """Connects to `path` (waiting for the monitor to make it), sends one request, returns its
    answer (the first message that is not an event). An AssertionError if the socket closes first."""
    c = Control(path, timeout)
    try:
        return c.request(**fields)
    except EOFError:
        raise AssertionError("the control socket closed") from None
    finally:
        c.close()
