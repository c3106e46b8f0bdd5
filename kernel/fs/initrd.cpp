#include "fs/initrd.h"

#include "console/console.h"
#include "core/errno.h"
#include "fs/cpio.h"
#include "fs/ramfs.h"
#include "fs/vfs.h"

namespace kiln::fs {
namespace {

constexpr uint32_t kTypeMask = 0170000;

// "./etc/hosts" and "/etc/hosts" both mean /etc/hosts; ".." never leaves the root.
bool clean_name(StringView name, StringView& out) {
    while (name.starts_with("./")) name = name.substr(2);
    while (name.starts_with("/")) name = name.substr(1);
    if (name == ".") name = {};
    size_t start = 0;
    for (size_t i = 0; i <= name.size(); ++i) {
        if (i == name.size() || name[i] == '/') {
            if (name.substr(start, i - start) == "..") return false;
            start = i + 1;
        }
    }
    out = name;
    return true;
}

int64_t add_entry(const CpioEntry& e, StringView path) {
    const uint32_t type = e.mode & kTypeMask;
    const uint32_t permissions = e.mode & 07777;
    if (path.empty()) return 0;  // the root itself
    if (type == static_cast<uint32_t>(Type::kDirectory)) {
        RefPtr<Node> dir;
        int64_t r = make_directories(path, dir);
        if (r == 0) {
            dir->set_permissions(permissions);
            dir->set_owner({e.uid, e.gid});
        }
        return r;
    }
    size_t slash = path.size();
    while (slash > 0 && path[slash - 1] != '/') --slash;
    RefPtr<Node> parent;
    int64_t r = make_directories(path.substr(0, slash), parent);
    if (r < 0) return r;
    const StringView name = path.substr(slash);
    RefPtr<Node> node;
    if (type == static_cast<uint32_t>(Type::kRegular)) {
        auto* file = new RamFile(permissions);
        file->borrow(e.data, e.size);
        node = RefPtr<Node>(file);
    } else if (type == static_cast<uint32_t>(Type::kSymlink)) {
        node = RefPtr<Node>(new RamSymlink(StringView(reinterpret_cast<const char*>(e.data), e.size)));
    } else {
        return 0;  // devices, fifos, sockets: the kernel provides its own /dev
    }
    node->set_owner({e.uid, e.gid});
    parent->remove_entry(name);  // a later entry replaces an earlier one, as the kernel does
    return parent->add_entry(name, node);
}

}  // namespace

bool unpack_initrd(const uint8_t* data, size_t size) {
    CpioReader reader(data, size);
    CpioEntry e;
    size_t files = 0;
    while (reader.next(e)) {
        StringView path;
        if (!clean_name(e.name, path)) {
            console::print("kiln: initrd: entry at offset {} has a path that leaves the root: {}\n", reader.offset(),
                           e.name);
            return false;
        }
        if (int64_t r = add_entry(e, path); r < 0) {
            console::print("kiln: initrd: cannot create {} (entry at offset {}): error {}\n", e.name, reader.offset(),
                           -r);
            return false;
        }
        ++files;
    }
    if (reader.error() != CpioError::kNone) {
        console::print("kiln: initrd: bad cpio archive at offset {}: {}\n", reader.offset(),
                       CpioReader::describe(reader.error()));
        return false;
    }
    return true;
}

}  // namespace kiln::fs
