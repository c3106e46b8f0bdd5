#include "fs/devices.h"

#include "arch/x86_64/cpu.h"
#include "console/console.h"
#include "core/errno.h"
#include "fs/ramfs.h"
#include "fs/vfs.h"
#include "lib/string.h"
#include "lib/string_class.h"
#include "lib/utility.h"

namespace kiln::fs {
namespace {

class DeviceNode : public Node {
  public:
    DeviceNode(uint32_t major, uint32_t minor) : Node(Type::kCharDevice, 0666), rdev_((major << 8) | minor) {}
    uint32_t rdev() const override { return rdev_; }
    bool seekable() const override { return true; }

  private:
    uint32_t rdev_;
};

class NullDevice final : public DeviceNode {
  public:
    NullDevice() : DeviceNode(1, 3) {}
    int64_t read(uint64_t, const IoBuffer&, size_t) override { return 0; }
    int64_t write(uint64_t, const IoBuffer&, size_t size) override { return static_cast<int64_t>(size); }
};

// Reads fill the buffer by `fill`: zeros for /dev/zero, random bytes for /dev/urandom.
class FillDevice final : public DeviceNode {
  public:
    FillDevice(uint32_t minor, bool random, bool full) : DeviceNode(1, minor), random_(random), full_(full) {}
    int64_t read(uint64_t, const IoBuffer& buffer, size_t size) override {
        uint8_t chunk[256];
        size_t done = 0;
        while (done < size) {
            const size_t n = min(size - done, sizeof(chunk));
            if (random_)
                random_bytes(chunk, n);
            else
                memset(chunk, 0, n);
            if (buffer.copy_out(done, chunk, n) != 0) return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
            done += n;
        }
        return static_cast<int64_t>(size);
    }
    int64_t write(uint64_t, const IoBuffer&, size_t size) override {
        return full_ ? -ENOSPC : static_cast<int64_t>(size);
    }

  private:
    bool random_;
    bool full_;
};

// The guest console: what the application writes reaches kiln-vmm's console (its stdout by
// default). Reads see end of file: kiln-vmm has no console input yet.
class ConsoleDevice final : public DeviceNode {
  public:
    ConsoleDevice() : DeviceNode(5, 1) {}
    bool seekable() const override { return false; }
    int64_t read(uint64_t, const IoBuffer&, size_t) override { return 0; }
    int64_t write(uint64_t, const IoBuffer& buffer, size_t size) override {
        // One console call per chunk, not per line: each is an exit to kiln-vmm.
        char chunk[1024];
        size_t done = 0;
        while (done < size) {
            const size_t n = min(size - done, sizeof(chunk));
            if (buffer.copy_in(done, chunk, n) != 0) return done > 0 ? static_cast<int64_t>(done) : -EFAULT;
            console::write_block(chunk, n);
            done += n;
        }
        return static_cast<int64_t>(size);
    }
    int64_t ioctl(uint64_t request, uint64_t) override {
        constexpr uint64_t kTcgets = 0x5401, kTiocgwinsz = 0x5413;
        // Not a terminal: libc then buffers stdout fully, one console write per buffer.
        if (request == kTcgets || request == kTiocgwinsz) return -ENOTTY;
        return -ENOTTY;
    }
};

using ExePathSource = StringView (*)();
constinit ExePathSource exe_path_of_caller = nullptr;

// /proc/self/exe: the calling process's program, as the Linux layer tells it.
class ExeLink final : public Node {
  public:
    ExeLink() : Node(Type::kSymlink, 0777) {}
    StringView link_target() const override { return exe_path_of_caller ? exe_path_of_caller() : StringView(); }
    uint64_t size() const override { return link_target().size(); }
};

void add(StringView dir_path, StringView name, Node* node) {
    RefPtr<Node> dir;
    if (make_directories(dir_path, dir) < 0) return;
    RefPtr<Node> ref(node);
    dir->remove_entry(name);
    (void)dir->add_entry(name, ref);
}

void add_text(StringView dir_path, StringView name, StringView text) {
    auto* file = new RamFile(0444);
    file->borrow(reinterpret_cast<const uint8_t*>(text.data()), text.size());
    add(dir_path, name, file);
}

}  // namespace

void random_bytes(void* buffer, size_t size) {
    static bool has_rdrand = (cpu::cpuid(1).ecx & (1u << 30)) != 0;
    static uint64_t state = cpu::rdtsc() | 1;
    auto* out = static_cast<uint8_t*>(buffer);
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v = 0;
        bool ok = false;
        if (has_rdrand) asm volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
        // xorshift64* over the TSC: never the only source on machines with RDRAND.
        state ^= cpu::rdtsc();
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        v ^= state * 0x2545f4914f6cdd1dull;
        (void)ok;
        for (size_t j = 0; j < 8 && i + j < size; ++j) out[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
}

void create_device_nodes() {
    add("/dev", "null", new NullDevice);
    add("/dev", "zero", new FillDevice(5, false, false));
    add("/dev", "full", new FillDevice(7, false, true));
    add("/dev", "random", new FillDevice(8, true, false));
    add("/dev", "urandom", new FillDevice(9, true, false));
    auto* console = new ConsoleDevice;
    add("/dev", "console", console);
    add("/dev", "tty", new RamSymlink("console"));
    RefPtr<Node> shm;
    (void)make_directories("/dev/shm", shm);
    RefPtr<Node> tmp;
    (void)make_directories("/tmp", tmp);
    tmp->set_permissions(01777);

    add("/proc/self", "exe", new ExeLink);
    add_text("/proc/sys/kernel", "osrelease", "6.1.0-kiln\n");
    // 1, "always": mappings only reserve address space and pages come when first touched (redis
    // warns that a background save may fail under anything else).
    add_text("/proc/sys/vm", "overcommit_memory", "1\n");
    add_text("/proc/sys/kernel", "pid_max", "4194304\n");
    add_text("/sys/devices/system/cpu", "online", "0\n");
    add_text("/sys/devices/system/cpu", "possible", "0\n");
    add_text("/sys/kernel/mm/transparent_hugepage", "hpage_pmd_size", "2097152\n");
}

void set_exe_path_source(StringView (*source)()) { exe_path_of_caller = source; }

}  // namespace kiln::fs
