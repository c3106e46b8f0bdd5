#!/usr/bin/env python3
"""kiln build, images, image inspect, rmi through the real command line, on a scratch state
directory; and the image it built boots (under QEMU TCG, which needs no /dev/kvm)."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

from e2e_support import kiln_proc_beside_kernel

BUILD = os.path.abspath(os.environ.get("KILN_BUILD_DIR") or
                        (sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else "build"))
KILN = os.path.join(BUILD, "bin", "kiln")
APPS = os.environ.get("KILN_GUEST_APPS") or os.path.join(BUILD, "tests", "guest-apps")
KILN_PROC = kiln_proc_beside_kernel(BUILD)


class ImageCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="kiln-e2e-images-")
        self.env = dict(os.environ, KILN_STATE_DIR=os.path.join(self.dir, "state"))
        self.app = os.path.join(self.dir, "app")
        os.makedirs(os.path.join(self.app, "rootfs", "bin"))
        for program in ("hello", "args_env"):
            shutil.copy(os.path.join(APPS, program), os.path.join(self.app, "rootfs", "bin", program))
        self.kraftfile('spec: v0.6\nname: greeter\ncmd: /bin/args_env x "two words"\n'
                       'env:\n  - GREETING=hi there\nrootfs: ./rootfs\n')

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def kraftfile(self, text):
        with open(os.path.join(self.app, "Kraftfile"), "w") as f:
            f.write(text)

    def kiln(self, *args, ok=True):
        r = subprocess.run([KILN, *args], capture_output=True, text=True, env=self.env, timeout=60)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def images(self):
        return json.loads(self.kiln("images", "-o", "json").stdout)


class ImageCommands(ImageCase):
    def test_build_list_inspect_remove(self):
        out = self.kiln("build", self.app).stdout
        self.assertRegex(out, r"^built greeter:latest [0-9a-f]{12} \(")
        table = self.kiln("images").stdout.splitlines()
        self.assertEqual(table[0].split(), ["NAME", "TAG", "IMAGE", "ID", "CREATED", "SIZE"])
        self.assertEqual(table[1].split()[:2], ["greeter", "latest"])
        [image] = self.images()
        manifest = image["manifest"]
        self.assertEqual(manifest["cmd"], ["/bin/args_env", "x", "two words"])
        self.assertEqual(manifest["env"], ["GREETING=hi there"])
        [inspected] = json.loads(self.kiln("image", "inspect", "greeter").stdout)
        self.assertTrue(os.path.isfile(inspected["kernel_path"]))
        self.assertTrue(os.path.isfile(inspected["rootfs_path"]))
        # By id prefix too; then gone, and its blobs with it.
        self.assertEqual(json.loads(self.kiln("image", "inspect", image["digest"][7:19]).stdout)[0]["digest"],
                         image["digest"])
        self.assertEqual(self.kiln("rmi", "greeter").stdout, "untagged greeter:latest\n")
        self.assertEqual(self.images(), [])
        self.assertEqual(os.listdir(os.path.join(self.dir, "state", "images", "sha256")), [])

    def test_the_same_files_make_the_same_image_whatever_their_container(self):
        first = self.kiln("build", self.app).stdout.split()[2]
        with tarfile.open(os.path.join(self.app, "rootfs.tar.gz"), "w:gz") as tar:
            tar.add(os.path.join(self.app, "rootfs"), arcname=".")
        shutil.rmtree(os.path.join(self.app, "rootfs"))
        self.kraftfile('spec: v0.6\nname: greeter\ncmd: /bin/args_env x "two words"\n'
                       'env:\n  - GREETING=hi there\nrootfs: ./rootfs.tar.gz\n')
        self.assertEqual(self.kiln("build", self.app, "-t", "greeter:tar").stdout.split()[2], first)

    def test_a_bad_kraftfile_is_one_clear_line_and_changes_nothing(self):
        self.kiln("build", self.app)
        before = self.images()
        self.kraftfile("spec: v0.6\nname: greeter\n\ncmd: {not: a list}\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"kiln: {self.app}/Kraftfile:4: cmd: expected a string or a list of strings\n")
        self.kraftfile("spec: v0.6\ncmd: /bin/nothere\nrootfs: ./rootfs\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertIn("cmd: /bin/nothere is not in the rootfs", r.stderr)
        self.assertEqual(self.images(), before)

    def test_missing_things_are_named(self):
        empty = os.path.join(self.dir, "empty")
        os.makedirs(empty)
        r = self.kiln("build", empty, ok=False)
        self.assertEqual(r.stderr, f"kiln: {empty}: no Kraftfile (nor kraft.yaml, kraft.yml) here\n")
        r = self.kiln("image", "inspect", "nothing", ok=False)
        self.assertEqual((r.returncode, r.stderr), (1, "kiln: no image 'nothing'\n"))
        r = self.kiln("images", "-o", "yaml", ok=False)
        self.assertIn("table or json", r.stderr)
        r = self.kiln("frobnicate", ok=False)
        self.assertNotEqual(r.returncode, 0)


class DockerfileImages(ImageCase):
    """A Kraftfile of the shape of Unikraft's nginx example (`rootfs: ./Dockerfile`, cmd beside
    it), built from a Dockerfile of our own, and run on proc."""

    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.app, "conf"))
        with open(os.path.join(self.app, "conf", "site.conf"), "w") as f:
            f.write("listen 8080;\n")
        self.dockerfile("# syntax=docker/dockerfile:1\n"
                        "FROM scratch\n"
                        "ARG GREETING=hello\n"
                        "COPY rootfs/bin/args_env /usr/bin/\n"
                        "COPY conf /etc/site/\n"
                        "ENV GREETING=\"${GREETING} from a Dockerfile\" \\\n"
                        "    MODE=docker\n"
                        "WORKDIR /srv\n"
                        "EXPOSE 8080\n"
                        'CMD ["/usr/bin/args_env", "from", "cmd"]\n')
        self.kraftfile("spec: v0.6\nname: web\nrootfs: ./Dockerfile\nenv:\n  MODE: kraftfile\n")

    def dockerfile(self, text):
        with open(os.path.join(self.app, "Dockerfile"), "w") as f:
            f.write(text)

    def test_built_and_run_on_proc(self):
        self.assertRegex(self.kiln("build", self.app).stdout, r"^built web:latest [0-9a-f]{12} \(")
        [image] = json.loads(self.kiln("image", "inspect", "web").stdout)
        manifest = image["manifest"]
        self.assertEqual(manifest["cmd"], ["/usr/bin/args_env", "from", "cmd"])
        self.assertEqual(manifest["env"], ["GREETING=hello from a Dockerfile", "MODE=kraftfile"])
        self.assertEqual((manifest["exposed"], manifest["workdir"]), (["8080/tcp"], "/srv"))
        env = [f'env.{name}="{value}"' for name, value in (e.split("=", 1) for e in manifest["env"])]
        r = subprocess.run([KILN_PROC, "--initrd", image["rootfs_path"], "--memory", "64M", "--timeout", "30",
                            "--cmdline", " ".join([*env, "--", *manifest["cmd"]])],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("argv[1]=from\nargv[2]=cmd\n", r.stdout)
        self.assertIn("env GREETING=hello from a Dockerfile", r.stdout)
        # The same Dockerfile and files make the same image.
        self.assertEqual(self.kiln("build", self.app, "-t", "web:again").stdout.split()[2], image["digest"][7:19])

    def test_a_directory_with_only_a_dockerfile_and_build_args(self):
        os.remove(os.path.join(self.app, "Kraftfile"))
        self.kiln("build", self.app, "--build-arg", "GREETING=hi")
        [image] = json.loads(self.kiln("image", "inspect", "app").stdout)  # named after the directory
        self.assertEqual(image["manifest"]["cmd"], ["/usr/bin/args_env", "from", "cmd"])
        self.assertEqual(image["manifest"]["env"], ["GREETING=hi from a Dockerfile", "MODE=docker"])
        # -f: another Dockerfile, the directory still the context.
        with open(os.path.join(self.app, "other.Dockerfile"), "w") as f:
            f.write("FROM scratch\nCOPY rootfs/bin/hello /hello\nENTRYPOINT [\"/hello\"]\n")
        self.kiln("build", self.app, "-f", os.path.join(self.app, "other.Dockerfile"), "-t", "other")
        [other] = json.loads(self.kiln("image", "inspect", "other").stdout)
        self.assertEqual(other["manifest"]["cmd"], ["/hello"])
        r = self.kiln("build", self.app, "--build-arg", "NOEQUALS", ok=False)
        self.assertEqual(r.stderr, "kiln: --build-arg NOEQUALS: expected NAME=VALUE\n")

    def test_what_kiln_does_not_build_is_one_clear_line_and_changes_nothing(self):
        self.kiln("build", self.app)
        before = self.images()
        self.dockerfile("FROM scratch\nCOPY conf /etc/site/\nHEALTHCHECK CMD true\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, f"^kiln: {self.app}/Dockerfile:3: HEALTHCHECK is not supported: [^\n]*\n$")
        self.dockerfile("FROM scratch\nCOPY conf /etc/site/\nRUN make install\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertEqual(r.stderr, f"kiln: {self.app}/Dockerfile:3: RUN: /bin/sh is not in the image (the shell of "
                                   "RUN's shell form: COPY one in, or use the JSON form)\n")
        self.dockerfile("FROM debian:12\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertIn(f"{self.app}/Dockerfile:1: FROM debian:12: no image 'debian:12' here (a registry's is named "
                      "HOST[:PORT]/REPO:TAG)", r.stderr)
        self.assertEqual(self.images(), before)

    def test_run_and_stages_make_the_image_that_runs(self):
        """RUN in the build sandbox in a first stage, its result copied into the image, which
        runs on proc; a failing RUN names its line and changes nothing."""
        shutil.copy("/bin/busybox", os.path.join(self.app, "busybox"))  # Debian's busybox-static
        self.dockerfile("FROM scratch AS build\n"
                        "COPY busybox /bin/busybox\n"
                        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                        "ARG WHO=nobody\n"
                        "RUN echo \"made by RUN for $WHO\" > /greeting.txt\n"
                        "FROM scratch\n"
                        "COPY --from=build /bin/busybox /bin/busybox\n"
                        "COPY --from=build /greeting.txt /etc/\n"
                        'CMD ["/bin/busybox", "cat", "/etc/greeting.txt"]\n')
        self.kiln("build", self.app, "--build-arg", "WHO=kiln")
        [image] = json.loads(self.kiln("image", "inspect", "web").stdout)
        r = subprocess.run([KILN_PROC, "--initrd", image["rootfs_path"], "--memory", "64M", "--timeout", "30",
                            "--cmdline", " ".join(["--", *image["manifest"]["cmd"]])],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("made by RUN for kiln\n", r.stdout)
        before = self.images()
        self.dockerfile("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"false\"]\n")
        r = self.kiln("build", self.app, ok=False)
        self.assertIn(f"kiln: {self.app}/Dockerfile:3: RUN: '/bin/busybox false' exited with status 1\n", r.stderr)
        self.assertEqual(self.images(), before)


class ImageBoots(ImageCase):
    def test_the_built_image_runs_its_program_with_its_arguments_and_environment(self):
        self.kiln("build", self.app)
        [image] = json.loads(self.kiln("image", "inspect", "greeter").stdout)
        manifest = image["manifest"]
        # The kernel's command line: env.NAME="value" before `--`, the program after; double quotes group.
        env = [f'env.{name}="{value}"' for name, value in (e.split("=", 1) for e in manifest["env"])]
        cmd = [f'"{word}"' if " " in word else word for word in manifest["cmd"]]
        cmdline = " ".join([*env, "--", *cmd])
        r = subprocess.run(["timeout", "-s", "KILL", "120", "qemu-system-x86_64", "-M",
                            "microvm,x-option-roms=off,rtc=off", "-accel", "tcg", "-cpu", "max", "-m", "128",
                            "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
                            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", image["kernel_path"],
                            "-initrd", image["rootfs_path"], "-append", cmdline],
                           capture_output=True, text=True, timeout=150)
        out = r.stdout.replace("\r\n", "\n")
        self.assertEqual(r.returncode, 1, out)  # isa-debug-exit: status 0 -> 1
        self.assertIn("argv[2]=two words\nenv GREETING=hi there", out)


if __name__ == "__main__":
    unittest.main()
