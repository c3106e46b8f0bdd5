#!/usr/bin/env python3
"""Writes a cpio "newc" archive (an initrd) from `DEST=SOURCE` pairs and `DEST:text` files.

make_initrd.py OUT /bin/hello=build/hello /etc/motd:'hello' /bin/cut%head:1000:build/hello /bin/junk%random:4096 \
    /lib64/ld.so%link:/lib/ld.so /%tree:ROOTFS_DIRECTORY /etc/app.conf%owned:1000:1001:'text'
Directories are created for every parent; files keep their source's executable bit. Files of a
page or more start on a page boundary (their names padded with NULs), so that the kernel can use
their read-only pages in place (mm::AddressSpace::borrowable_page).
`%head:N:SOURCE` is the first N bytes of SOURCE, `%random:N` N bytes of (seeded) garbage: test
material for the kernel's ELF checks. `%owned:UID:GID:TEXT` is a text file of that owner; every
other entry is root's.
"""
import os
import random
import sys


PAGE = 4096
HEADER = 110


def header(ino, mode, size, name, name_size=None, uid=0, gid=0):
    fields = [ino, mode, uid, gid, 1, 0, size, 0, 0, 0, 0, name_size or len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def file_entry(offset, ino, mode, path, data, uid=0, gid=0):
    """The entry at `offset` of the archive; a file of a page or more gets its data on a page."""
    name = path.encode() + b"\0"
    if len(data) >= PAGE:
        start = offset + HEADER + len(name)
        name += b"\0" * (-start % PAGE)
    return pad(header(ino, mode, len(data), path, len(name), uid, gid) + name) + pad(data)


def pad(data):
    return data + b"\0" * (-len(data) % 4)


def main():
    out, specs = sys.argv[1], sys.argv[2:]
    entries = {}
    owners = {}
    dirs = set()
    for spec in specs:
        if "%tree:" in spec:  # a directory's files and symbolic links, under DEST
            dest, tree = spec.split("%tree:", 1)
            for root, subdirs, files in os.walk(tree):
                for name in subdirs + files:
                    path = os.path.join(root, name)
                    inside = os.path.join(dest, os.path.relpath(path, tree)).lstrip("/")
                    if os.path.isdir(path) and not os.path.islink(path):
                        dirs.add(inside)  # empty ones too
                    elif os.path.islink(path):
                        entries[inside] = (0o120777, os.readlink(path).encode())
                    elif os.path.isfile(path):
                        with open(path, "rb") as f:
                            entries[inside] = (os.stat(path).st_mode & 0o777 | 0o100000, f.read())
            continue
        if "%owned:" in spec:
            dest, rest = spec.split("%owned:", 1)
            uid, gid, text = rest.split(":", 2)
            data, mode = text.encode() + b"\n", 0o100644
            owners[dest.lstrip("/")] = (int(uid), int(gid))
        elif "%link:" in spec:  # a symbolic link to the path given
            dest, target = spec.split("%link:", 1)
            data, mode = target.encode(), 0o120777
        elif "%head:" in spec:
            dest, rest = spec.split("%head:", 1)
            count, source = rest.split(":", 1)
            with open(source, "rb") as f:
                data = f.read(int(count))
            mode = 0o100755
        elif "%random:" in spec:
            dest, count = spec.split("%random:", 1)
            data, mode = random.Random(dest).randbytes(int(count)), 0o100755
        elif "=" in spec:
            dest, source = spec.split("=", 1)
            with open(source, "rb") as f:
                data = f.read()
            mode = 0o100755 if os.access(source, os.X_OK) else 0o100644
        else:
            dest, text = spec.split(":", 1)
            data, mode = text.encode() + b"\n", 0o100644
        entries[dest.lstrip("/")] = (mode, data)
    for path in list(entries) + list(dirs):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    archive = bytearray()
    ino = 1
    for d in sorted(dirs):
        archive += pad(header(ino, 0o40755, 0, d) + d.encode() + b"\0")
        ino += 1
    for path, (mode, data) in sorted(entries.items()):
        archive += file_entry(len(archive), ino, mode, path, data, *owners.get(path, (0, 0)))
        ino += 1
    archive += pad(header(0, 0, 0, "TRAILER!!!") + b"TRAILER!!!\0")
    with open(out, "wb") as f:
        f.write(archive)


if __name__ == "__main__":
    main()
