#!/usr/bin/env python3
"""Volumes through kiln and kilnd's API, on a scratch state directory: create, list, inspect,
remove, attach and detach (to stopped instances: none is started here), clone, the errors, and a
kilnd killed with SIGKILL that restarts with every volume and attachment. Each fresh volume passes
`e2fsck -fn`."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from e2e_support import (KilnCommand, api_request, build_hello_image, kilnd_pid, remove_cgroups,
                         remove_private_network, start_kilnd)

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
APPS = os.environ.get("KILN_GUEST_APPS") or os.path.join(BUILD, "tests", "guest-apps")
E2FSCK = shutil.which("e2fsck") or "/usr/sbin/e2fsck"


class Volumes(KilnCommand, unittest.TestCase):
    kiln_binary = os.path.join(BUILD, "bin", "kiln")

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kiln-e2e-volumes-")
        cls.env = dict(os.environ, KILN_STATE_DIR=cls.dir)
        build_hello_image(BUILD, APPS, cls.env, os.path.join(cls.dir, "app"))
        cls.socket = os.path.join(cls.dir, "kilnd.sock")
        cls.kilnd = start_kilnd(BUILD, cls.env)

    @classmethod
    def tearDownClass(cls):
        cls.kilnd.kill()
        cls.kilnd.wait()
        remove_private_network(cls.dir)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def tearDown(self):
        self.assertIsNone(self.kilnd.poll(), "kilnd died")
        # Each test leaves nothing: instances first (their volumes are detached with them).
        for i in self.api("GET", "/v1/instances")[1]["data"]["instances"]:
            self.api("DELETE", f"/v1/instances/{i['uuid']}")
        for v in self.api("GET", "/v1/volumes")[1]["data"]["volumes"]:
            self.assertEqual(self.api("DELETE", f"/v1/volumes/{v['uuid']}")[0], 200)
        self.assertEqual(os.listdir(os.path.join(self.dir, "volumes")), [])

    def api(self, method, path, body=None):
        return api_request(self.socket, method, path, body)

    def ok(self, method, path, body=None, status=200):
        got, envelope = self.api(method, path, body)
        self.assertEqual(got, status, envelope)
        return envelope["data"]

    def refused(self, status, message, method, path, body=None):
        got, envelope = self.api(method, path, body)
        self.assertEqual((got, envelope["status"]), (status, "error"), envelope)
        self.assertIn(message, envelope["message"])

    def instance(self, name, volumes=None):
        body = {"image": "hello", "name": name, "autostart": False}
        if volumes is not None:
            body["volumes"] = volumes
        return self.ok("POST", "/v1/instances", body, 201)

    def assert_clean(self, path):
        r = subprocess.run([E2FSCK, "-fn", path], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_cli_create_ls_inspect_rm(self):
        self.assertEqual(self.kiln("volume", "create", "data", "--size", "16M").stdout, "data\n")
        self.assertEqual(self.kiln("volume", "create", "other").stdout, "other\n")  # docker-like default: 256M
        listed = self.kiln("volume", "ls").stdout
        self.assertRegex(listed, r"(?m)^NAME +SIZE +STATE")
        self.assertRegex(listed, r"(?m)^data +16\.8MB +available")
        self.assertRegex(listed, r"(?m)^other +268MB +available")
        self.assertEqual(sorted(v["name"] for v in json.loads(self.kiln("volume", "ls", "-o", "json").stdout)),
                         ["data", "other"])
        [data] = json.loads(self.kiln("volume", "inspect", "-o", "json", "data").stdout)
        self.assertEqual((data["size_mb"], data["size_bytes"], data["state"]), (16, 16 << 20, "available"))
        self.assertEqual(os.path.dirname(data["file"]), os.path.join(self.dir, "volumes"))
        self.assertEqual(os.path.getsize(data["file"]), 16 << 20)
        self.assert_clean(data["file"])
        label = subprocess.run([shutil.which("e2label") or "/usr/sbin/e2label", data["file"]], capture_output=True,
                               text=True)
        self.assertEqual(label.stdout.strip(), "data")
        self.assertEqual(self.kiln("volume", "rm", "data", "other").stdout, "data\nother\n")
        self.assertFalse(os.path.exists(data["file"]))
        self.assertEqual(json.loads(self.kiln("volume", "ls", "-o", "json").stdout), [])

    def test_api_create_get_delete(self):
        v = self.ok("POST", "/v1/volumes", {"name": "api", "size_mb": 8}, 201)
        self.assertEqual((v["name"], v["size_mb"], v["attached_to"]), ("api", 8, []))
        self.assert_clean(v["file"])
        self.assertEqual(self.ok("GET", f"/v1/volumes/{v['uuid']}")["name"], "api")
        self.assertEqual([x["uuid"] for x in self.ok("GET", "/v1/volumes")["volumes"]], [v["uuid"]])
        unnamed = self.ok("POST", "/v1/volumes", {"size_mb": 8}, 201)
        self.assertTrue(unnamed["name"].startswith("volume-"), unnamed)
        self.assertEqual(self.ok("DELETE", "/v1/volumes/api")["state"], "deleted")
        self.refused(404, "no volume 'api'", "GET", "/v1/volumes/api")

    def test_errors(self):
        self.ok("POST", "/v1/volumes", {"name": "taken", "size_mb": 8}, 201)
        self.refused(409, "a volume named 'taken' exists", "POST", "/v1/volumes", {"name": "taken", "size_mb": 8})
        self.refused(400, "field 'size_mb' must be between 8 and", "POST", "/v1/volumes", {"name": "x", "size_mb": 7})
        self.refused(400, "field 'size_mb' must be an integer", "POST", "/v1/volumes", {"name": "x", "size_mb": "1G"})
        self.refused(400, "field 'size_mb' is required", "POST", "/v1/volumes", {"name": "x"})
        self.refused(400, "not a valid name", "POST", "/v1/volumes", {"name": "../x", "size_mb": 8})
        self.refused(400, "unknown field", "POST", "/v1/volumes", {"name": "x", "size_mb": 8, "colour": 1})
        self.refused(404, "no volume 'nope'", "DELETE", "/v1/volumes/nope")
        self.refused(404, "no volume 'nope'", "POST", "/v1/volumes/nope/clone", {"name": "y"})
        self.refused(409, "a volume named 'taken' exists", "POST", "/v1/volumes/taken/clone", {"name": "taken"})
        r = self.kiln("volume", "create", "big", "--size", "lots", ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("size 'lots': a volume size is like 64M", r.stderr)
        r = self.kiln("volume", "create", "taken", ok=False)
        self.assertIn("a volume named 'taken' exists", r.stderr)
        r = self.kiln("volume", "rm", "nope", ok=False)
        self.assertIn("no volume 'nope'", r.stderr)
        # kiln run -v refuses a host directory and a bad path before anything is made.
        for spec, message in (("/srv:/data", "named volumes, not host directories"),
                              ("data:/", "cannot be mounted over the root"), ("data:/d:rx", "the mode is ro or rw")):
            r = self.kiln("run", "-d", "-v", spec, "hello", ok=False)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(message, r.stderr)
        self.assertEqual(self.ok("GET", "/v1/instances")["instances"], [])
        self.assertEqual([v["name"] for v in self.ok("GET", "/v1/volumes")["volumes"]], ["taken"])

    def test_attach_detach(self):
        self.ok("POST", "/v1/volumes", {"name": "data", "size_mb": 8}, 201)
        self.ok("POST", "/v1/volumes", {"name": "conf", "size_mb": 8}, 201)
        web = self.instance("web", [{"name": "data", "at": "/var/data/"}, {"name": "conf", "at": "/etc/c",
                                                                             "readonly": True}])
        self.assertEqual(web["volumes"], [
            {"uuid": web["volumes"][0]["uuid"], "name": "data", "at": "/var/data", "readonly": False},
            {"uuid": web["volumes"][1]["uuid"], "name": "conf", "at": "/etc/c", "readonly": True}])
        self.assertEqual(self.ok("GET", "/v1/instances/web")["volumes"], web["volumes"])
        data = self.ok("GET", "/v1/volumes/data")
        self.assertEqual(data["state"], "idle")  # attached to a stopped instance
        self.assertEqual([(a["name"], a["at"], a["readonly"]) for a in data["attached_to"]],
                         [("web", "/var/data", False)])
        self.assertEqual(data["mounted_by"], [])
        # ext4 is not a cluster file system: read-write to one instance, to no other.
        self.refused(409, "is attached to instance 'web' read-write", "POST", "/v1/instances",
                     {"image": "hello", "name": "db", "autostart": False,
                      "volumes": [{"name": "data", "at": "/d", "readonly": True}]})
        self.refused(404, "no volume 'nope'", "POST", "/v1/instances",
                     {"image": "hello", "name": "db", "autostart": False, "volumes": [{"name": "nope", "at": "/d"}]})
        self.assertEqual([i["name"] for i in self.ok("GET", "/v1/instances")["instances"]], ["web"])  # nothing made
        self.instance("db")
        self.refused(409, "is attached to instance 'web' read-write", "PUT", "/v1/volumes/data/attach",
                     {"attach_to": {"name": "db"}, "at": "/d"})
        self.refused(409, "volume 'data' is attached to instance 'web' already", "PUT", "/v1/volumes/data/attach",
                     {"attach_to": {"name": "web"}, "at": "/other"})
        self.ok("POST", "/v1/volumes", {"name": "spare", "size_mb": 8}, 201)
        self.refused(409, "has a volume at /etc/c already", "PUT", "/v1/volumes/spare/attach",
                     {"attach_to": {"name": "web"}, "at": "/etc/c"})
        # The kernel mounts no volume inside another (it would hide the outer one's directory).
        self.refused(409, "instance 'web': /var/data/logs lies inside the volume at /var/data", "PUT",
                     "/v1/volumes/spare/attach", {"attach_to": {"name": "web"}, "at": "/var/data/logs"})
        self.refused(400, "volumes[1]: /srv/www lies inside the volume at /srv", "POST", "/v1/instances",
                     {"image": "hello", "name": "nested", "autostart": False,
                      "volumes": [{"name": "spare", "at": "/srv/www"}, {"name": "conf", "at": "/srv",
                                                                          "readonly": True}]})
        self.refused(400, "mount path 'd': must be absolute", "PUT", "/v1/volumes/data/attach",
                     {"attach_to": {"name": "db"}, "at": "d"})
        self.refused(404, "no instance 'nope'", "PUT", "/v1/volumes/data/attach",
                     {"attach_to": {"name": "nope"}, "at": "/d"})
        # Read-only to several is fine.
        conf = self.ok("PUT", "/v1/volumes/conf/attach", {"attach_to": {"name": "db"}, "at": "/c", "readonly": True})
        self.assertEqual(sorted(a["name"] for a in conf["attached_to"]), ["db", "web"])
        self.instance("writer")
        self.refused(409, "is attached to instance 'web' read-only: ext4 is not a cluster file system", "PUT",
                     "/v1/volumes/conf/attach", {"instance": "writer", "at": "/c"})
        # Delete refused while attached; detach, then it goes.
        self.refused(409, "volume 'data' is attached to instance 'web': detach it", "DELETE", "/v1/volumes/data")
        self.refused(409, "is not attached to instance 'db'", "PUT", "/v1/volumes/data/detach",
                     {"from": {"name": "db"}})
        data = self.ok("PUT", "/v1/volumes/data/detach", {"from": {"name": "web"}})
        self.assertEqual((data["state"], data["attached_to"]), ("available", []))
        self.assertEqual([v["name"] for v in self.ok("GET", "/v1/instances/web")["volumes"]], ["conf"])
        # Now db may have it read-write, after its read-only conf: its second device.
        self.ok("PUT", "/v1/volumes/data/attach", {"attach_to": {"uuid": self.ok("GET", "/v1/instances/db")["uuid"]},
                                                   "at": "/d"})
        self.assertEqual([(v["name"], v["at"]) for v in self.ok("GET", "/v1/instances/db")["volumes"]],
                         [("conf", "/c"), ("data", "/d")])
        self.assertRegex(self.kiln("volume", "ls").stdout, r"(?m)^conf +8\.39MB +idle +web:/etc/c:ro,db:/c:ro ")
        # Deleting an instance detaches its volumes.
        self.ok("DELETE", "/v1/instances/db")
        self.assertEqual(self.ok("GET", "/v1/volumes/data")["attached_to"], [])
        self.assertEqual([a["name"] for a in self.ok("GET", "/v1/volumes/conf")["attached_to"]], ["web"])

    def test_clone(self):
        src = self.ok("POST", "/v1/volumes", {"name": "src", "size_mb": 8}, 201)
        # Something of our own in it (debugfs writes to the image while no instance uses it).
        debugfs = shutil.which("debugfs") or "/usr/sbin/debugfs"
        marker = os.path.join(self.dir, "marker")
        with open(marker, "w") as f:
            f.write("kept by the clone\n")
        subprocess.run([debugfs, "-w", "-R", f"write {marker} marker", src["file"]], check=True, capture_output=True)
        self.instance("reader", [{"name": "src", "at": "/src", "readonly": True}])
        copy = self.ok("POST", "/v1/volumes/src/clone", {"name": "copy"}, 201)
        self.assertEqual((copy["size_mb"], copy["attached_to"]), (8, []))
        self.assertNotEqual(copy["file"], src["file"])
        self.assert_clean(copy["file"])
        got = subprocess.run([debugfs, "-R", "cat marker", copy["file"]], capture_output=True, text=True)
        self.assertEqual(got.stdout, "kept by the clone\n")
        self.assertEqual(self.kiln("volume", "clone", "copy", "copy2").stdout, "copy2\n")
        self.assert_clean(self.ok("GET", "/v1/volumes/copy2")["file"])

    def test_kept_across_kilnd_sigkill(self):
        v = self.ok("POST", "/v1/volumes", {"name": "durable", "size_mb": 8}, 201)
        self.instance("keeper", [{"name": "durable", "at": "/keep", "readonly": False}])
        before = self.ok("GET", "/v1/volumes/durable")
        os.kill(self.kilnd.pid, signal.SIGKILL)
        self.kilnd.wait()
        type(self).kilnd = start_kilnd(BUILD, self.env)
        after = self.ok("GET", "/v1/volumes/durable")
        for key in ("uuid", "name", "size_mb", "created_ns", "file", "attached_to", "state"):
            self.assertEqual(after[key], before[key], key)
        self.assertTrue(os.path.exists(v["file"]))
        self.assert_clean(v["file"])
        self.assertEqual(self.ok("GET", "/v1/instances/keeper")["volumes"][0]["at"], "/keep")


class TenderFlags(KilnCommand, unittest.TestCase):
    """What `kiln run -v` makes kilnd give an instance's tender, seen by a stand-in kiln-proc that
    writes its arguments down and ends (no kernel runs): one `--volume path=FILE[,ro]` per volume
    and one `kiln.volume=/path[:ro]` on the command line before its `--`, in the same order."""

    kiln_binary = os.path.join(BUILD, "bin", "kiln")

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="kiln-e2e-volume-flags-")
        fake = os.path.join(cls.dir, "fake-tender")
        os.makedirs(fake)
        cls.argv_file = os.path.join(cls.dir, "tender-argv")
        # A waiting tender (--await-orders FD, kilnd's pool) takes its orders as kiln-proc does:
        # one message on FD, the arguments NUL-separated, the standard streams as SCM_RIGHTS;
        # started directly, its arguments are its orders.
        with open(os.path.join(fake, "kiln-proc"), "w") as f:
            f.write(f"""#!{sys.executable}
import os, socket, sys
args = sys.argv[1:]
if args[:1] == ["--await-orders"]:
    orders = socket.socket(fileno=int(args[1]))
    message, fds, _, _ = socket.recv_fds(orders, 1 << 20, 3)
    args = [a.decode() for a in message.split(b"\\0")[:-1]]
with open({cls.argv_file!r} + ".part", "w") as out:
    out.write("".join(a + "\\n" for a in args))
os.rename({cls.argv_file!r} + ".part", {cls.argv_file!r})
""")
        os.chmod(os.path.join(fake, "kiln-proc"), 0o755)
        open(os.path.join(fake, "kiln-proc.elf"), "w").close()  # what kilnd looks for beside kiln-proc
        # No real tender at all: kvm is missing (no kiln-vmm there), proc is the stand-in.
        cls.env = dict(os.environ, KILN_STATE_DIR=cls.dir, KILN_PROC=os.path.join(fake, "kiln-proc"),
                       KILN_VMM=os.path.join(fake, "kiln-vmm"), KILN_PLATFORM="proc")
        build_hello_image(BUILD, APPS, cls.env, os.path.join(cls.dir, "app"))

    @classmethod
    def tearDownClass(cls):
        end_kilnd(cls.dir)
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_kiln_run_v(self):
        if os.path.exists(self.argv_file):
            os.remove(self.argv_file)
        self.kiln("volume", "create", "conf", "--size", "8M")
        r = self.kiln("run", "-d", "--platform", "proc", "--name", "app", "-v", "data:/var/data/", "-v",
                      "conf:/etc/conf:ro", "hello", ok=False)
        self.assertEqual((r.returncode, r.stdout), (0, "app\n"), r.stderr)
        argv = self.tender_argv()
        volumes = {v["name"]: v for v in json.loads(self.kiln("volume", "ls", "-o", "json").stdout)}
        self.assertEqual(volumes["data"]["size_mb"], 256)  # made by kiln run -v, docker's way
        flags = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
        self.assertEqual(flags, [f"path={volumes['data']['file']}", f"path={volumes['conf']['file']},ro"])
        cmdline = argv[argv.index("--cmdline") + 1]
        self.assertRegex(cmdline, r"(^| )kiln\.volume=/var/data kiln\.volume=/etc/conf:ro .*-- /bin/hello$")

    def tender_argv(self):
        deadline = time.time() + 20
        while not os.path.exists(self.argv_file):
            self.assertLess(time.time(), deadline, "the tender was not started")
            time.sleep(0.01)
        with open(self.argv_file) as f:
            return f.read().split("\n")[:-1]

    def test_compose_volumes(self):
        project = os.path.join(self.dir, "project")
        os.makedirs(project)
        with open(os.path.join(project, "compose.yaml"), "w") as f:
            f.write("services:\n  db:\n    image: hello\n    volumes: [\"store:/var/lib/db\", \"seed:/seed:ro\"]\n"
                    "volumes:\n  store:\n    size: 16M\n  seed:\n")
        if os.path.exists(self.argv_file):
            os.remove(self.argv_file)
        r = subprocess.run([self.kiln_binary, "compose", "up", "-d"], cwd=project, env=self.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("volume store: created", r.stdout)
        argv = self.tender_argv()
        volumes = {v["name"]: v for v in json.loads(self.kiln("volume", "ls", "-o", "json").stdout)}
        self.assertEqual((volumes["store"]["size_mb"], volumes["seed"]["size_mb"]), (16, 256))
        self.assertEqual([argv[i + 1] for i, a in enumerate(argv) if a == "--volume"],
                         [f"path={volumes['store']['file']}", f"path={volumes['seed']['file']},ro"])
        self.assertIn("kiln.volume=/var/lib/db kiln.volume=/seed:ro ", argv[argv.index("--cmdline") + 1])
        # down removes the instance and keeps its volumes, detached, as docker compose does.
        r = subprocess.run([self.kiln_binary, "compose", "down"], cwd=project, env=self.env, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        volumes = {v["name"]: v for v in json.loads(self.kiln("volume", "ls", "-o", "json").stdout)}
        self.assertEqual((volumes["store"]["attached_to"], volumes["seed"]["attached_to"]), ([], []))


def end_kilnd(state_dir):
    """Ends the kilnd `kiln` started for `state_dir`, then its network and cgroups."""
    pid = kilnd_pid(state_dir)
    if pid:
        os.kill(pid, signal.SIGKILL)
        deadline = time.time() + 10
        while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
            time.sleep(0.01)
    remove_private_network(state_dir)
    remove_cgroups(state_dir)


if __name__ == "__main__":
    unittest.main()
