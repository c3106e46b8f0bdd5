// Volumes mounted at boot: `kiln.volume=PATH[:ro]` parameters, one per block device, in order.
// A bad parameter (not an absolute path other than /, a mode other than ro, no device for it, two
// mount points at or under one another, a mount point under a file of the root file system) stops
// the boot before anything is mounted; a volume that does not mount is skipped.
#include "console/console.h"
#include "core/errno.h"
#include "drivers/block/device.h"
#include "fs/ext4/file_system.h"
#include "fs/vfs.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::fs::ext4 {
namespace {

constexpr size_t kMaxVolumes = 16;
// As ext4's default commit=5: what an application wrote without fsync reaches the journal within
// five seconds.
constexpr uint64_t kCommitIntervalNs = 5'000'000'000;
constinit FileSystem* mounted[kMaxVolumes] = {};
constinit size_t mounted_count = 0;

// One `kiln.volume=` parameter: its value as given (for messages), the mount point and the mode.
struct Request {
    StringView value;
    StringView path;
    bool read_only;
};

// What is wrong with `path` as a mount point, or null: absolute, not "/", no "." or "..".
const char* syntax_error(StringView path) {
    if (path.empty()) return "no mount point given (kiln.volume=/path or /path:ro)";
    if (path[0] != '/') return "the mount point must be an absolute path (like /data)";
    StringView rest = path;
    size_t components = 0;
    for (StringView c = next_component(rest); !c.empty(); c = next_component(rest), ++components)
        if (c == "." || c == "..") return "the mount point must not hold . or .. components";
    if (components == 0) return "a volume cannot be mounted over the root file system (/)";
    if (path.size() >= 1024) return "the mount point is too long";
    return nullptr;
}

// Whether `inner` is `outer` or lies under it, component by component ("/data//x/" is "/data/x").
bool contains(StringView outer, StringView inner) {
    for (;;) {
        StringView a = next_component(outer);
        StringView b = next_component(inner);
        if (a.empty()) return true;
        if (a != b) return false;
    }
}

const char* type_name(Type type) {
    switch (type) {
        case Type::kRegular: return "a regular file";
        case Type::kSymlink: return "a symbolic link";
        case Type::kCharDevice: return "a device";
        case Type::kFifo: return "a FIFO";
        case Type::kSocket: return "a socket";
        case Type::kDirectory: return "a directory";
    }
    return "not a directory";
}

// Checks the mount point against the root file system, before any volume is mounted: every
// component that exists must be a directory (a volume replaces the last one's entry; missing ones
// are made). False after a console message naming the parameter.
bool check_in_root(const Request& request) {
    RefPtr<Node> dir = fs::root();
    StringView rest = request.path;
    for (StringView c = next_component(rest); !c.empty(); c = next_component(rest)) {
        RefPtr<Node> next = dir->lookup(c);
        if (!next) return true;
        const StringView so_far =
            request.path.substr(0, static_cast<size_t>(c.data() - request.path.data()) + c.size());
        if (next->type() != Type::kDirectory) {
            console::print("kiln: kiln.volume={}: {} is {} in the root file system, not a directory\n", request.value,
                           so_far, type_name(next->type()));
            return false;
        }
        dir = next;
    }
    return true;
}

// Puts `root` where `path` (checked by syntax_error and check_in_root) names, over whatever
// directory was there.
int64_t attach(StringView path, RefPtr<Node> root) {
    size_t slash = path.size();
    while (slash > 0 && path[slash - 1] == '/') --slash;  // "/data/" is "/data"
    path = path.substr(0, slash);
    size_t last = path.size();
    while (last > 0 && path[last - 1] != '/') --last;
    if (last == 0 || last == path.size()) return -EINVAL;
    StringView name = path.substr(last);
    RefPtr<Node> parent;
    if (last == 1) {
        parent = fs::root();
    } else if (int64_t r = make_directories(path.substr(0, last - 1), parent); r < 0) {
        return r;
    }
    (void)parent->remove_entry(name);
    return parent->add_entry(name, root);
}

// Reads and checks every `kiln.volume=` parameter: the mount points' syntax, one device each, no
// mount point at or under another, and the root file system's side. False after a console message
// naming the first bad parameter and what is wrong with it; nothing is mounted then.
bool read_requests(const Cmdline& cmdline, Request* requests, size_t& count) {
    count = 0;
    for (size_t i = 0; i < cmdline.param_count(); ++i) {
        Cmdline::Param p = cmdline.param(i);
        if (p.key != "kiln.volume") continue;
        Request request{p.value, p.value, false};
        if (const size_t colon = p.value.find(':'); colon != StringView::npos) {
            request.path = p.value.substr(0, colon);
            request.read_only = true;
            if (p.value.substr(colon + 1) != "ro") {
                console::print("kiln: kiln.volume={}: the only mode is ro (kiln.volume=/path or /path:ro)\n", p.value);
                return false;
            }
        }
        if (const char* error = syntax_error(request.path)) {
            console::print("kiln: kiln.volume={}: {}\n", p.value, error);
            return false;
        }
        if (count >= kMaxVolumes) {
            console::print("kiln: kiln.volume={}: more than {} volumes\n", p.value, kMaxVolumes);
            return false;
        }
        if (count >= block::device_count()) {
            console::print("kiln: kiln.volume={}: no block device #{} for it (the instance has {})\n", p.value, count,
                           block::device_count());
            return false;
        }
        for (size_t j = 0; j < count; ++j) {
            const Request& earlier = requests[j];
            if (contains(earlier.path, request.path) || contains(request.path, earlier.path)) {
                console::print(
                    "kiln: kiln.volume={}: {} {} volume #{}'s mount point (kiln.volume={})\n", p.value, request.path,
                    contains(request.path, earlier.path) ? (contains(earlier.path, request.path) ? "is also" : "holds")
                                                         : "lies under",
                    j, earlier.value);
                return false;
            }
        }
        if (!check_in_root(request)) return false;
        requests[count++] = request;
    }
    return true;
}

// A kernel thread: it runs between file system operations (kernel code is not preemptible), so a
// commit never cuts one.
void commit_periodically(void*) {
    for (;;) {
        sched::sleep_until(time::now_ns() + kCommitIntervalNs);
        sync_volumes();
    }
}

}  // namespace

bool mount_volumes(const Cmdline& cmdline) {
    Request requests[kMaxVolumes];
    size_t count = 0;
    if (!read_requests(cmdline, requests, count)) return false;
    for (size_t i = 0; i < count; ++i) {
        const Request& request = requests[i];
        block::Device* device = block::device(i);
        FileSystem* fs = nullptr;
        const char* error = "";
        if (int64_t r = FileSystem::mount(*device, request.read_only, fs, error); r < 0) {
            console::print("kiln: kiln.volume={}: {} cannot be mounted: {} (error {})\n", request.value, device->name(),
                           error, -r);
            continue;
        }
        int64_t r = -EUCLEAN;
        if (RefPtr<Node> root = fs->root(); root && root->type() == Type::kDirectory) r = attach(request.path, root);
        if (r < 0) {  // the root's node is gone again: the file system can go
            console::print("kiln: kiln.volume={}: {} cannot be mounted there (error {})\n", request.value,
                           device->name(), -r);
            delete fs;
            continue;
        }
        mounted[mounted_count++] = fs;
    }
    if (mounted_count > 0 && !sched::spawn_kernel(commit_periodically, nullptr, "volume-commit"))
        console::print("kiln: no thread for the volumes' periodic commit: only fsync and sync commit\n");
    return true;
}

void sync_volumes() {
    for (size_t i = 0; i < mounted_count; ++i) (void)mounted[i]->sync();
}

void unmount_volumes() {
    for (size_t i = 0; i < mounted_count; ++i) (void)mounted[i]->unmount();
}

}  // namespace kiln::fs::ext4
