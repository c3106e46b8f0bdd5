"""The root file system of Debian programs that tests/boot/test_debian.py and bench/debian run:
scripts/debian-rootfs unpacks the packages from the .deb cache (scripts/install-deps fills it;
nothing is downloaded here), then the test programs and their files join them. The directory is
also a chroot for the same binaries as host processes (the benchmarks' peer)."""
import os
import shutil
import subprocess
import sys

SOURCE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CACHE = os.environ.get("KILN_DEB_CACHE", "/var/cache/kiln-debs")
# As Debian ships them: Python 3 (the interpreter, its core modules, the rest of the standard
# library), nginx (Debian 12's nginx-light is a name for it), redis (its server is redis-tools'
# program under another name), busybox (Debian's dynamic build: PIE, glibc) for the shell.
PYTHON = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib")
PACKAGES = (*PYTHON, "nginx", "nginx-common", "redis-server", "redis-tools", "busybox")
# The applets a container image of busybox links to it (`busybox --install -s`), for the shell to
# find on PATH.
APPLETS = ("sh", "ls", "wc", "tr", "cat", "echo", "test", "true", "sleep", "grep", "head")
FILES = {"www/index.html": "hello from nginx on kiln\n"}
DIRECTORIES = ("app", "data", "tmp", "var/lib/nginx/body", "var/log/nginx", "dev")


def build(work, packages=PACKAGES, initrd=True):
    """Makes WORK/rootfs and, with `initrd`, WORK/debian.cpio; returns (rootfs, initrd or None)."""
    rootfs = os.path.join(work, "rootfs")
    made = subprocess.run([os.path.join(SOURCE, "scripts", "debian-rootfs"), "--cache", CACHE, "--out", rootfs,
                           *packages], capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"scripts/debian-rootfs failed (scripts/install-deps fills {CACHE}): {made.stderr}")
    for d in DIRECTORIES:
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    if os.path.exists(os.path.join(rootfs, "bin", "busybox")):
        for applet in APPLETS:
            link = os.path.join(rootfs, "bin", applet)
            if not os.path.lexists(link):
                os.symlink("busybox", link)
    apps = os.path.join(SOURCE, "tests", "debian-apps")
    for f in os.listdir(apps):
        shutil.copy(os.path.join(apps, f), os.path.join(rootfs, "app", f))
    for path, text in FILES.items():
        os.makedirs(os.path.dirname(os.path.join(rootfs, path)), exist_ok=True)
        with open(os.path.join(rootfs, path), "w") as f:
            f.write(text)
    if not initrd:
        return rootfs, None
    initrd = os.path.join(work, "debian.cpio")
    subprocess.run([sys.executable, os.path.join(SOURCE, "tests", "guest-apps", "make_initrd.py"), initrd,
                    f"/%tree:{rootfs}"], check=True)
    return rootfs, initrd
