// The kernel's ext4 against damaged volumes: a volume is whatever file the user gave, so a
// corrupt superblock, group descriptor, inode, extent tree, directory or journal must be refused
// or worked around, never crash the kernel or write outside the device.
//
// The input patches a small volume made by mke2fs once at start (1 KiB blocks, a 1 MiB journal,
// a few files and directories, a committed transaction left in its journal): pairs of a 24-bit
// offset into the first 768 KiB, where the metadata lives, and a byte. The volume is then
// mounted (replaying the journal), walked, read, written, renamed and unmounted.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "drivers/block/device.h"
#include "fs/ext4/file_system.h"
#include "fs/ext4/node.h"

namespace {

using kiln::RefPtr;
using kiln::StringView;
using kiln::fs::IoBuffer;
using kiln::fs::Node;
using kiln::fs::Type;
using kiln::fs::ext4::FileSystem;

std::vector<uint8_t> pristine;

// The device: a copy of the patched volume in memory; every access checked against its end.
class MemoryDevice final : public kiln::block::Device {
  public:
    explicit MemoryDevice(std::vector<uint8_t>& bytes, int64_t budget = -1) : bytes_(bytes), budget_(budget) {}
    int64_t writes() const { return writes_; }
    const char* name() const override { return "fuzz"; }
    uint64_t sector_count() const override { return bytes_.size() / kiln::block::kSectorSize; }
    bool read_only() const override { return false; }
    int read(uint64_t sector, void* buffer, size_t bytes) override {
        if (!inside(sector, bytes)) std::abort();  // the file system must never ask for this
        std::memcpy(buffer, bytes_.data() + sector * 512, bytes);
        return 0;
    }
    int write(uint64_t sector, const void* buffer, size_t bytes) override {
        if (!inside(sector, bytes)) std::abort();
        if (budget_ >= 0 && writes_ >= budget_) return -5;  // the power is off
        ++writes_;
        std::memcpy(bytes_.data() + sector * 512, buffer, bytes);
        return 0;
    }
    int flush() override { return 0; }

  private:
    bool inside(uint64_t sector, size_t bytes) const {
        return bytes % 512 == 0 && sector <= sector_count() && bytes / 512 <= sector_count() - sector;
    }
    std::vector<uint8_t>& bytes_;
    int64_t budget_;
    int64_t writes_ = 0;
};

bool shell(const std::string& command) { return std::system(command.c_str()) == 0; }

bool has_entry(std::vector<uint8_t>& bytes, const char* name) {
    MemoryDevice device(bytes);
    FileSystem* fs = nullptr;
    const char* error = "";
    if (FileSystem::mount(device, true, fs, error) != 0) return false;
    const bool found = static_cast<bool>(fs->root()->lookup(name));
    delete fs;
    return found;
}

// Leaves a committed transaction in the journal: a mkdir whose commit reached the journal's
// commit block and then lost power, before any block was written home. Every mount replays it.
void leave_a_transaction_in_the_journal() {
    const std::vector<uint8_t> before = pristine;
    for (int64_t extra = 0; extra < 4; ++extra) {
        pristine = before;
        MemoryDevice counting(pristine);
        FileSystem* fs = nullptr;
        const char* error = "";
        if (FileSystem::mount(counting, false, fs, error) != 0) std::abort();
        RefPtr<Node> made;
        if (fs->root()->create("journaled", Type::kDirectory, 0755, {}, {}, made) != 0) std::abort();
        made = {};
        // The commit's writes: its blocks, its descriptor, then the commit block.
        const int64_t budget = counting.writes() + static_cast<int64_t>(fs->cache().dirty().size()) + 2 + extra;
        delete fs;
        pristine = before;
        MemoryDevice device(pristine, budget);
        if (FileSystem::mount(device, false, fs, error) != 0) std::abort();
        if (fs->root()->create("journaled", Type::kDirectory, 0755, {}, {}, made) != 0) std::abort();
        made = {};
        (void)fs->sync();
        delete fs;
        std::vector<uint8_t> replayed = pristine;
        if (has_entry(replayed, "journaled")) return;  // (the read-only mount replays in its copy)
    }
    std::abort();
}

// mke2fs with the features kilnd's volumes have and a small tree; then a transaction left in its
// journal, so every input goes through the replay too.
void make_pristine() {
    char dir[] = "/tmp/kiln-fuzz-ext4-XXXXXX";
    if (!mkdtemp(dir)) std::abort();
    const std::string d = dir;
    const std::string tree = d + "/tree";
    const bool made =
        shell("mkdir -p " + tree + "/sub/deeper && printf hello > " + tree + "/hello && head -c 70000 /dev/urandom > " +
              tree + "/sub/blob && ln -s hello " + tree + "/link && ln -s " + std::string(100, 'x') + " " + tree +
              "/sub/long-link && truncate -s 3M " + d +
              "/v.img && mke2fs -q -F -t ext4 -b 1024 -J size=1 -N 64 -O "
              "^metadata_csum,^64bit,^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file -E "
              "lazy_itable_init=0,lazy_journal_init=0 -d " +
              tree + " " + d + "/v.img");
    if (!made) std::abort();
    FILE* f = std::fopen((d + "/v.img").c_str(), "rb");
    pristine.resize(3 << 20);
    if (!f || std::fread(pristine.data(), 1, pristine.size(), f) != pristine.size()) std::abort();
    std::fclose(f);
    shell("rm -rf " + d);
    leave_a_transaction_in_the_journal();
}

void walk(const RefPtr<Node>& dir, int depth, int& budget) {
    if (depth > 4) return;
    kiln::fs::DirEntry entry;
    std::vector<std::string> names;
    for (size_t i = 0; i < 64 && dir->entry(i, entry); ++i) names.emplace_back(entry.name.data(), entry.name.size());
    char buffer[4096];
    for (const std::string& name : names) {
        if (--budget < 0) return;
        RefPtr<Node> child = dir->lookup(StringView(name.data(), name.size()));
        if (!child) continue;
        if (child->type() == Type::kDirectory) {
            walk(child, depth + 1, budget);
        } else if (child->type() == Type::kRegular) {
            for (uint64_t at = 0; at < child->size() && at < (1 << 20); at += sizeof(buffer))
                if (child->read(at, IoBuffer::kernel(buffer), sizeof(buffer)) <= 0) break;
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (pristine.empty()) make_pristine();
    static std::vector<uint8_t> volume;  // kept: a fresh 3 MiB allocation per input is most of the time
    volume = pristine;
    for (size_t i = 0; i + 4 <= size; i += 4) {
        const uint32_t offset = (data[i] | data[i + 1] << 8 | data[i + 2] << 16) % (768 << 10);
        volume[offset] = data[i + 3];
    }
    MemoryDevice device(volume);
    FileSystem* fs = nullptr;
    const char* error = "";
    if (FileSystem::mount(device, false, fs, error) != 0) return 0;
    {
        RefPtr<Node> root = fs->root();
        if (root && root->type() == Type::kDirectory) {
            int budget = 200;
            walk(root, 0, budget);
            RefPtr<Node> made;
            const char text[] = "written by the fuzzer";
            if (root->create("new", Type::kRegular, 0644, {}, {}, made) == 0) {
                (void)made->write(5000, IoBuffer::kernel(text), sizeof(text));
                (void)made->truncate(100);
            }
            RefPtr<Node> sub;
            if (root->create("newdir", Type::kDirectory, 0755, {}, {}, sub) == 0 && made)
                (void)root->rename("new", sub, "moved");
            (void)root->remove_entry("hello");
            if (RefPtr<Node> old = root->lookup("sub"))
                if (old->type() == Type::kDirectory) (void)old->remove_entry("blob");
            (void)fs->sync();
        }
    }
    (void)fs->unmount();
    delete fs;
    return 0;
}
