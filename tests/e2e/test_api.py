#!/usr/bin/env python3
"""kilnd's API fed malformed and hostile requests: clear 4xx answers in the envelope, never a
crash, nothing changed. Runs a real kilnd on a scratch state directory; no guest runs."""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from e2e_support import api_request, build_hello_image, remove_private_network, start_kilnd

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
APPS = os.environ.get("KILN_GUEST_APPS") or os.path.join(BUILD, "tests", "guest-apps")


def kilnd_on_tcp(env, token_file, *extra):
    """A kilnd serving --listen on a free loopback port, once it listens: (process, port)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    kilnd = subprocess.Popen([os.path.join(BUILD, "bin", "kilnd"), "--listen", f"127.0.0.1:{port}", "--token-file",
                              token_file, *extra], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return kilnd, port
        except OSError:
            if time.time() > deadline:
                kilnd.kill()
                raise AssertionError("kilnd did not listen")
            time.sleep(0.01)


class MalformedRequests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kiln-e2e-api-")
        cls.env = dict(os.environ, KILN_STATE_DIR=cls.dir)
        build_hello_image(BUILD, APPS, cls.env, os.path.join(cls.dir, "app"))
        cls.kilnd = start_kilnd(BUILD, cls.env, stderr=subprocess.PIPE)
        cls.socket = os.path.join(cls.dir, "kilnd.sock")

    @classmethod
    def tearDownClass(cls):
        cls.kilnd.kill()
        cls.kilnd.wait()
        cls.kilnd.stderr.close()
        remove_private_network(cls.dir)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def call(self, method, path, body=None, raw=None):
        status, envelope = api_request(self.socket, method, path, body, raw)
        self.assertEqual(set(envelope), {"status", "message", "data", "errors", "op_time_us"}, envelope)
        return status, envelope

    def refused(self, status, message, method, path, body=None, raw=None):
        got, envelope = self.call(method, path, body, raw)
        self.assertEqual((got, envelope["status"]), (status, "error"), envelope)
        self.assertIn(message, envelope["message"])
        self.assertEqual(envelope["errors"][0]["status"], status)

    def tearDown(self):
        # After every hostile request: alive, and nothing was created.
        self.assertIsNone(self.kilnd.poll(), "kilnd died")
        status, envelope = self.call("GET", "/v1/instances")
        self.assertEqual((status, envelope["data"]["instances"]), (200, []))

    def test_bodies_that_are_not_requests(self):
        self.refused(400, "not valid JSON", "POST", "/v1/instances", raw=b"{\"image\": ")
        self.refused(400, "not valid JSON", "POST", "/v1/instances", raw=b"\xff\xfe\x00garbage")
        self.refused(400, "must be a JSON object", "POST", "/v1/instances", raw=b"[\"hello\"]")
        self.refused(413, "larger than 1 MiB", "POST", "/v1/instances", raw=b"{\"image\": \"" + b"a" * (2 << 20) + b"\"}")

    def test_fields_unknown_ill_typed_or_out_of_range(self):
        self.refused(400, "unknown field 'imagee'", "POST", "/v1/instances", {"imagee": "hello"})
        self.refused(400, "field 'memory_mb' must be an integer", "POST", "/v1/instances",
                     {"image": "hello", "memory_mb": "lots"})
        self.refused(400, "between 16 and 3072", "POST", "/v1/instances", {"image": "hello", "memory_mb": 1 << 40})
        self.refused(400, "field 'args' must be a list of strings", "POST", "/v1/instances",
                     {"image": "hello", "args": {"a": 1}})
        self.refused(400, "unknown field 'drain'", "PUT", "/v1/instances/x/stop", {"drain": 1})

    def test_names_that_are_bad_or_missing(self):
        self.refused(400, "is not a valid name", "POST", "/v1/instances", {"image": "hello", "name": "../../etc"})
        self.refused(400, "is not a valid name", "POST", "/v1/instances", {"image": "hello", "name": "x" * 300})
        self.refused(404, "no image 'nope'", "POST", "/v1/instances", {"image": "nope"})
        self.refused(404, "no instance 'ghost'", "GET", "/v1/instances/ghost")
        self.refused(404, "no instance 'ghost'", "DELETE", "/v1/instances/ghost")
        self.refused(404, "no such endpoint", "GET", "/v1/volcanoes")

    def test_a_client_that_speaks_no_http(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.socket)
        s.sendall(b"\x00\x01 this is not HTTP\r\n\r\n")
        s.settimeout(10)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()

    def test_batches_answer_for_every_item(self):
        for name in ("b1", "b2"):
            self.assertEqual(self.call("POST", "/v1/instances", {"image": "hello", "name": name, "autostart": False})[0],
                             201)
        status, envelope = self.call("PUT", "/v1/instances/stop", [{"name": "b1"}, {"name": "b2", "force": True}])
        self.assertEqual((status, [i["state"] for i in envelope["data"]["instances"]]), (200, ["stopped", "stopped"]))
        status, envelope = self.call("DELETE", "/v1/instances", [{"name": "b1"}, {"name": "ghost"}, {"name": "b2"}])
        self.assertEqual((status, envelope["status"]), (207, "error"))
        self.assertEqual([i["status"] for i in envelope["data"]["instances"]], ["success", "error", "success"])
        self.assertEqual(envelope["errors"], [{"status": 404, "message": "ghost: no instance 'ghost'"}])
        self.refused(400, "must have exactly one of", "DELETE", "/v1/instances", [{"uuid": "a", "name": "b"}])

    def test_a_good_request_still_works(self):
        status, envelope = self.call("POST", "/v1/instances", {"image": "hello", "name": "quiet", "autostart": False})
        self.assertEqual((status, envelope["data"]["state"]), (201, "stopped"))
        self.refused(409, "exists", "POST", "/v1/instances", {"image": "hello", "name": "quiet", "autostart": False})
        self.assertEqual(self.call("DELETE", "/v1/instances/quiet")[0], 200)


class OverTcpWithAToken(unittest.TestCase):
    """kilnd --listen on loopback: a bearer token or a 401; kiln --host / KILN_HOST drive it."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-e2e-tcp-")
        self.token = "t0ken-" + os.urandom(12).hex()
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write(self.token + "\n")
        self.env = dict(os.environ, KILN_STATE_DIR=os.path.join(self.dir, "state"))
        self.kilnd, self.port = kilnd_on_tcp(self.env, os.path.join(self.dir, "token"))

    def tearDown(self):
        self.kilnd.kill()
        self.kilnd.wait()
        remove_private_network(os.path.join(self.dir, "state"))
        shutil.rmtree(self.dir, ignore_errors=True)

    def get(self, headers):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", "/v1/healthz", headers=headers)
        r = c.getresponse()
        status, body = r.status, json.loads(r.read())
        c.close()
        return status, body

    def test_the_token_is_required(self):
        self.assertEqual(self.get({})[0], 401)
        self.assertEqual(self.get({"Authorization": "Bearer " + self.token[:-1] + "x"})[0], 401)
        self.assertEqual(self.get({"Authorization": self.token})[0], 401)
        status, body = self.get({"Authorization": "Bearer " + self.token})
        self.assertEqual((status, body["status"]), (200, "success"))

    def test_kiln_drives_a_remote_kilnd(self):
        other = dict(self.env, KILN_STATE_DIR=os.path.join(self.dir, "elsewhere"))  # no local kilnd there
        kiln = os.path.join(BUILD, "bin", "kiln")
        host = f"http://127.0.0.1:{self.port}"
        r = subprocess.run([kiln, "--host", host, "--token", self.token, "ps", "-a"], env=other, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout.split()), (0, ["NAME", "STATE", "IMAGE", "CREATED", "STATUS"]),
                         r.stderr)
        r = subprocess.run([kiln, "ps"], env=dict(other, KILN_HOST=host, KILN_TOKEN="wrong-token-wrong"),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual((r.returncode, r.stderr), (1, "kiln: a bearer token is required (Authorization: Bearer TOKEN)\n"))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "elsewhere", "kilnd.sock")), "a local kilnd was started")

    def test_images_built_here_are_pushed_to_the_remote_kilnd(self):
        app = os.path.join(self.dir, "app")
        os.makedirs(os.path.join(app, "rootfs", "bin"))
        shutil.copy(os.path.join(APPS, "hello"), os.path.join(app, "rootfs", "bin"))
        with open(os.path.join(app, "Kraftfile"), "w") as f:
            f.write("spec: v0.6\nname: pushed\ncmd: /bin/hello\nrootfs: ./rootfs\n")
        here = dict(self.env, KILN_STATE_DIR=os.path.join(self.dir, "here"), KILN_HOST=f"http://127.0.0.1:{self.port}",
                    KILN_TOKEN=self.token)
        kiln = lambda *a: subprocess.run([os.path.join(BUILD, "bin", "kiln"), *a], env=here, capture_output=True,
                                         text=True, timeout=60)
        r = kiln("build", app)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"built pushed:latest [0-9a-f]{12} .* on http://127.0.0.1:")
        self.assertRegex(kiln("images").stdout, r"pushed\s+latest")  # the remote's list
        remote = json.loads(kiln("image", "inspect", "pushed").stdout)[0]
        local = json.loads(subprocess.run([os.path.join(BUILD, "bin", "kiln"), "image", "inspect", "pushed"],
                                          env=dict(self.env, KILN_STATE_DIR=os.path.join(self.dir, "here")),
                                          capture_output=True, text=True, timeout=60).stdout)[0]
        self.assertEqual(remote["digest"], local["digest"])  # the same image, byte for byte
        kilnd_blobs = os.listdir(os.path.join(self.dir, "state", "images", "sha256"))
        self.assertEqual(len(kilnd_blobs), 3)  # manifest, kernel, root file system
        self.assertEqual(kiln("rmi", "pushed").stdout, "untagged pushed:latest\n")
        self.assertNotIn("pushed", kiln("images").stdout)

    def test_an_upload_whose_bytes_do_not_match_their_digest_is_refused(self):
        import urllib.request
        boundary = "kilnboundary"
        parts = [("reference", "", b"evil:latest"), ("manifest", "m.json",
                 json.dumps({"kernel": {"digest": "sha256:" + "0" * 64}}).encode()),
                 ("blob", "sha256:" + "0" * 64, b"not those bytes")]
        body = b""
        for name, filename, content in parts:
            body += f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"".encode()
            body += (f"; filename=\"{filename}\"" if filename else "").encode() + b"\r\n\r\n" + content + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/images", data=body, method="POST",
                                         headers={"Authorization": "Bearer " + self.token,
                                                  "Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            urllib.request.urlopen(request, timeout=10)
            self.fail("accepted")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 400)
            self.assertIn("its bytes have another digest", json.loads(e.read())["message"])
        for garbage, content_type in ((b'{"reference": "x"}', "application/json"),
                                      (b"--kilnboundary\r\nnot a part", f"multipart/form-data; boundary={boundary}")):
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}/v1/images", data=garbage, method="POST",
                                             headers={"Authorization": "Bearer " + self.token,
                                                      "Content-Type": content_type})
            try:
                urllib.request.urlopen(request, timeout=10)
                self.fail("accepted " + repr(garbage))
            except urllib.error.HTTPError as e:
                self.assertEqual(e.code, 400, garbage)
                self.assertIn("message", json.loads(e.read()))


class OverTls(unittest.TestCase):
    """kilnd --listen with --tls-cert/--tls-key: kiln --host https:// trusts only the certificate
    it is given (--cacert or KILN_CA_CERT)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-e2e-tls-")
        self.token = "t0ken-" + os.urandom(12).hex()
        self.file = lambda name: os.path.join(self.dir, name)
        with open(self.file("token"), "w") as f:
            f.write(self.token + "\n")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.file("key.pem"),
                        "-out", self.file("cert.pem"), "-days", "1", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        self.env = dict(os.environ, KILN_STATE_DIR=self.file("state"))
        self.kilnd, self.port = kilnd_on_tcp(self.env, self.file("token"), "--tls-cert", self.file("cert.pem"),
                                             "--tls-key", self.file("key.pem"))

    def tearDown(self):
        self.kilnd.kill()
        self.kilnd.wait()
        remove_private_network(self.file("state"))
        shutil.rmtree(self.dir, ignore_errors=True)

    def kiln(self, *args, **env):
        other = dict(self.env, KILN_STATE_DIR=self.file("elsewhere"), **env)  # no local kilnd there
        return subprocess.run([os.path.join(BUILD, "bin", "kiln"), *args], env=other, capture_output=True, text=True,
                              timeout=30)

    def test_kiln_over_tls_trusts_only_the_given_certificate(self):
        host = f"https://127.0.0.1:{self.port}"
        r = self.kiln("--host", host, "--token", self.token, "--cacert", self.file("cert.pem"), "ps", "-a")
        self.assertEqual((r.returncode, r.stdout.split()[:2]), (0, ["NAME", "STATE"]), r.stderr)
        r = self.kiln("ps", KILN_HOST=host, KILN_TOKEN=self.token, KILN_CA_CERT=self.file("cert.pem"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.kiln("--host", host, "--token", self.token, "ps")  # the system's CAs do not know it
        self.assertEqual(r.returncode, 1)
        self.assertIn("kiln: kilnd at " + host, r.stderr)
        r = self.kiln("--host", f"http://127.0.0.1:{self.port}", "--token", self.token, "ps")  # no TLS: refused
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertFalse(os.path.exists(self.file("elsewhere/kilnd.sock")), "a local kilnd was started")

    def test_a_bad_certificate_is_named(self):
        with open(self.file("junk.pem"), "w") as f:
            f.write("not a certificate\n")
        r = subprocess.run([os.path.join(BUILD, "bin", "kilnd"), "--listen", "127.0.0.1:1", "--token-file",
                            self.file("token"), "--tls-cert", self.file("junk.pem"), "--tls-key", self.file("key.pem")],
                           env=dict(self.env, KILN_STATE_DIR=self.file("other")), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("junk.pem", r.stderr)
        remove_private_network(self.file("other"))


if __name__ == "__main__":
    unittest.main()
