"""The container runtimes the benchmarks compare against (Debian's crun and runsc), shared by
bench/proc and bench/platform: an OCI bundle holding one static binary, and the cgroup step crun
needs on these machines."""
import json
import os
import shutil
import subprocess


def make_bundle(root, binary, args):
    bundle = os.path.join(root, "bundle-" + os.path.basename(binary))
    os.makedirs(os.path.join(bundle, "rootfs"))
    shutil.copy(binary, os.path.join(bundle, "rootfs", os.path.basename(binary)))
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["args"] = args
    config["process"]["terminal"] = False
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


class HybridCgroupFix:
    """crun: 'cgroups in hybrid mode not supported, drop all controllers from cgroupv2'."""

    def __enter__(self):
        self.mounted = None
        controllers = "/sys/fs/cgroup/unified/cgroup.controllers"
        if os.path.exists(controllers) and open(controllers).read().strip():
            target = "/sys/fs/cgroup/hugetlb"
            if not os.path.isdir(target):
                subprocess.run(["mount", "-o", "remount,rw", "/sys/fs/cgroup"], check=False)
                os.makedirs(target, exist_ok=True)
            subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", target], check=True)
            self.mounted = target
        return self

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", self.mounted], check=False)
