// Volumes mounted at boot: `kiln.volume=PATH[:ro]` parameters, one per block device, in order.
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

// Puts `root` where `path` (absolute, not "/") names, over whatever was there.
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

// A kernel thread: it runs between file system operations (kernel code is not preemptible), so a
// commit never cuts one.
void commit_periodically(void*) {
    for (;;) {
        sched::sleep_until(time::now_ns() + kCommitIntervalNs);
        sync_volumes();
    }
}

}  // namespace

void mount_volumes(const Cmdline& cmdline) {
    size_t index = 0;
    for (size_t i = 0; i < cmdline.param_count(); ++i) {
        Cmdline::Param p = cmdline.param(i);
        if (p.key != "kiln.volume") continue;
        const size_t device_index = index++;
        StringView path = p.value;
        bool read_only = false;
        if (path.size() > 3 && path.substr(path.size() - 3) == ":ro") {
            read_only = true;
            path = path.substr(0, path.size() - 3);
        }
        block::Device* device = block::device(device_index);
        if (!device) {
            console::print("kiln: kiln.volume={}: no block device #{} for it\n", p.value, device_index);
            continue;
        }
        if (path.empty() || path[0] != '/' || path == "/") {
            console::print("kiln: kiln.volume={}: the mount point must be an absolute path other than /\n", p.value);
            continue;
        }
        FileSystem* fs = nullptr;
        const char* error = "";
        if (int64_t r = FileSystem::mount(*device, read_only, fs, error); r < 0) {
            console::print("kiln: kiln.volume={}: {} cannot be mounted: {} (error {})\n", p.value, device->name(),
                           error, -r);
            continue;
        }
        int64_t r = -EUCLEAN;
        if (RefPtr<Node> root = fs->root(); root && root->type() == Type::kDirectory) r = attach(path, root);
        if (r < 0) {  // the root's node is gone again: the file system can go
            console::print("kiln: kiln.volume={}: {} cannot be mounted there (error {})\n", p.value, device->name(),
                           -r);
            delete fs;
            continue;
        }
        if (mounted_count < kMaxVolumes) mounted[mounted_count++] = fs;
    }
    if (mounted_count > 0 && !sched::spawn_kernel(commit_periodically, nullptr, "volume-commit"))
        console::print("kiln: no thread for the volumes' periodic commit: only fsync and sync commit\n");
}

void sync_volumes() {
    for (size_t i = 0; i < mounted_count; ++i) (void)mounted[i]->sync();
}

void unmount_volumes() {
    for (size_t i = 0; i < mounted_count; ++i) (void)mounted[i]->unmount();
}

}  // namespace kiln::fs::ext4
