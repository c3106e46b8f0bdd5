// The kernel's ext4 (kernel/fs/ext4/), built for the host and run against volumes that Debian's
// mke2fs made, checked afterwards by e2fsck and read back by debugfs: the same tools an operator
// uses on a volume (docs/volumes.md). Crashes are simulated by a device that stops persisting
// writes after a budget, at every point of a workload.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

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

// The features kilnd's volumes are made with (platform/volumes): keep the two in step.
constexpr const char* kFeatures = "^metadata_csum,^64bit,^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file";

int run(const std::string& command, std::string* output = nullptr) {
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) text.append(buf, n);
    const int status = pclose(p);
    if (output) *output = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A block device over a file. With a budget, writes past it are dropped as a power cut would
// drop them (and every later call fails), so what is on the file is what a crash there leaves.
class FileDevice final : public kiln::block::Device {
  public:
    explicit FileDevice(const std::string& path, bool read_only = false) : read_only_(read_only) {
        fd_ = open(path.c_str(), read_only ? O_RDONLY : O_RDWR);
        struct stat st {};
        fstat(fd_, &st);
        sectors_ = static_cast<uint64_t>(st.st_size) / kiln::block::kSectorSize;
    }
    ~FileDevice() override { close(fd_); }
    const char* name() const override { return "file"; }
    uint64_t sector_count() const override { return sectors_; }
    bool read_only() const override { return read_only_; }
    int read(uint64_t sector, void* buffer, size_t bytes) override {
        if (crashed()) return -EIO;
        return pread(fd_, buffer, bytes, static_cast<off_t>(sector * 512)) == static_cast<ssize_t>(bytes) ? 0 : -EIO;
    }
    int write(uint64_t sector, const void* buffer, size_t bytes) override {
        if (read_only_) return -EROFS;
        if (budget_ >= 0 && writes_ >= budget_) return -EIO;
        ++writes_;
        return pwrite(fd_, buffer, bytes, static_cast<off_t>(sector * 512)) == static_cast<ssize_t>(bytes) ? 0 : -EIO;
    }
    int flush() override { return crashed() ? -EIO : (fdatasync(fd_) == 0 ? 0 : -EIO); }
    void set_budget(int64_t writes) { budget_ = writes; }
    int64_t writes() const { return writes_; }
    bool crashed() const { return budget_ >= 0 && writes_ >= budget_; }

  private:
    int fd_ = -1;
    bool read_only_;
    uint64_t sectors_ = 0;
    int64_t budget_ = -1;
    int64_t writes_ = 0;
};

class Ext4Test : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ =
            std::filesystem::temp_directory_path() / ("kiln-ext4-" + std::to_string(getpid()) + "-" +
                                                      ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        image_ = (dir_ / "volume.ext4").string();
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }

    void make_volume(const std::string& size = "64M", const std::string& extra = "", int block_size = 4096) {
        std::string out;
        ASSERT_EQ(
            run("truncate -s " + size + " " + image_ + " && mke2fs -q -F -t ext4 -b " + std::to_string(block_size) +
                    " -O " + kFeatures + " -E lazy_itable_init=0,lazy_journal_init=0 " + extra + " " + image_,
                &out),
            0)
            << out;
    }

    FileSystem* mount(FileDevice& device) {
        FileSystem* fs = nullptr;
        const char* error = "";
        const int64_t r = FileSystem::mount(device, false, fs, error);
        EXPECT_EQ(r, 0) << error;
        return fs;
    }
    // A mount that may fail (the device crashes during it).
    static FileSystem* try_mount(FileDevice& device) {
        FileSystem* fs = nullptr;
        const char* error = "";
        return FileSystem::mount(device, false, fs, error) == 0 ? fs : nullptr;
    }

    // e2fsck -fy on a copy (it replays the journal), then -fn finds nothing to fix.
    void expect_fsck_clean(const std::string& image) {
        const std::string copy = (dir_ / "fsck-copy.ext4").string();
        std::filesystem::copy_file(image, copy, std::filesystem::copy_options::overwrite_existing);
        std::string out;
        const int fixed = run("e2fsck -fy " + copy, &out);
        EXPECT_LE(fixed, 1) << out;  // 0: clean, 1: the journal was replayed (or fixes made)
        const int checked = run("e2fsck -fn " + copy, &out);
        EXPECT_EQ(checked, 0) << out;
    }
    // e2fsck -fn on the volume itself: a cleanly unmounted volume needs nothing at all.
    void expect_fsck_untouched() {
        std::string out;
        EXPECT_EQ(run("e2fsck -fn " + image_, &out), 0) << out;
    }

    std::string debugfs_cat(const std::string& path) {
        std::string out;
        run("debugfs -R 'cat " + path + "' " + image_ + " 2>/dev/null", &out);
        const std::string banner = "debugfs 1.";
        if (out.rfind(banner, 0) == 0) out = out.substr(out.find('\n') + 1);
        return out;
    }

    std::filesystem::path dir_;
    std::string image_;
};

RefPtr<Node> walk(RefPtr<Node> dir, const std::string& path) {
    std::stringstream parts(path);
    std::string part;
    while (dir && std::getline(parts, part, '/'))
        if (!part.empty()) dir = dir->lookup(StringView(part.data(), part.size()));
    return dir;
}

RefPtr<Node> create(const RefPtr<Node>& dir, const std::string& name, Type type, const std::string& target = "") {
    RefPtr<Node> out;
    const int64_t r = dir->create(StringView(name.data(), name.size()), type, 0644,
                                  StringView(target.data(), target.size()), {}, out);
    EXPECT_EQ(r, 0) << name;
    return out;
}

int64_t write_all(const RefPtr<Node>& file, uint64_t offset, const std::string& data) {
    return file->write(offset, IoBuffer::kernel(data.data()), data.size());
}

std::string read_all(const RefPtr<Node>& file) {
    std::string data(file->size(), '\0');
    const int64_t n = file->read(0, IoBuffer::kernel(data.data()), data.size());
    EXPECT_EQ(n, static_cast<int64_t>(data.size()));
    return data;
}

std::string pattern(size_t size, unsigned seed) {
    std::string s(size, '\0');
    uint32_t x = seed * 2654435761u + 1;
    for (auto& c : s) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 16);
    }
    return s;
}

TEST_F(Ext4Test, WritesAFileThatE2fsckAndDebugfsAccept) {
    make_volume();
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root();
        ASSERT_TRUE(root->lookup("lost+found"));
        RefPtr<Node> hello = create(root, "hello.txt", Type::kRegular);
        ASSERT_EQ(write_all(hello, 0, "hello, volume\n"), 14);
        EXPECT_EQ(read_all(hello), "hello, volume\n");
        ASSERT_EQ(fs->unmount(), 0);
        hello = {};
        root = {};
        delete fs;
    }
    expect_fsck_untouched();
    EXPECT_EQ(debugfs_cat("/hello.txt"), "hello, volume\n");
}

// Owners: a new node's from create, a chown's through the journal, ids past 16 bits in i_uid's and
// i_gid's high halves; debugfs, e2fsck and a remount all see them.
TEST_F(Ext4Test, KeepsOwnersIncludingTheirHighHalves) {
    make_volume();
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root(), made;
        ASSERT_EQ(root->create("app.conf", Type::kRegular, 0644, {}, {1000, 1001}, made), 0);
        EXPECT_EQ(made->uid(), 1000u);
        EXPECT_EQ(made->gid(), 1001u);
        RefPtr<Node> dir = create(root, "data", Type::kDirectory);
        EXPECT_EQ(dir->uid(), 0u);
        EXPECT_EQ(dir->set_owner({70000, 65536 + 5}), 0);
        RefPtr<Node> link = create(root, "link", Type::kSymlink, "app.conf");
        EXPECT_EQ(link->set_owner({33, 33}), 0);
        made = dir = link = root = {};
        ASSERT_EQ(fs->unmount(), 0);
        delete fs;
    }
    expect_fsck_untouched();
    std::string out;
    run("debugfs -R 'stat /data' " + image_, &out);
    EXPECT_NE(out.find("User: 70000   Group: 65541"), std::string::npos) << out;
    run("debugfs -R 'stat /app.conf' " + image_, &out);
    EXPECT_NE(out.find("User:  1000   Group:  1001"), std::string::npos) << out;
    {
        // A chown that only the journal holds when the instance is killed.
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root(), conf = walk(root, "app.conf"), dir = walk(root, "data");
        ASSERT_TRUE(conf && dir);
        EXPECT_EQ(dir->uid(), 70000u);
        EXPECT_EQ(dir->gid(), 65541u);
        EXPECT_EQ(walk(root, "link")->uid(), 33u);
        EXPECT_EQ(conf->set_owner({4000000000u, 2}), 0);
        EXPECT_EQ(conf->sync(), 0);
        conf = dir = root = {};
        delete fs;  // no unmount
    }
    expect_fsck_clean(image_);
    FileDevice device(image_);
    FileSystem* fs = mount(device);  // replays the journal
    ASSERT_NE(fs, nullptr);
    RefPtr<Node> conf = walk(fs->root(), "app.conf");
    ASSERT_TRUE(conf);
    EXPECT_EQ(conf->uid(), 4000000000u);
    EXPECT_EQ(conf->gid(), 2u);
    EXPECT_EQ(conf->mode(), 0100644u);
    conf = {};
    ASSERT_EQ(fs->unmount(), 0);
    delete fs;
    expect_fsck_untouched();
}

TEST_F(Ext4Test, ReadsWhatMke2fsPutThere) {
    const auto source = dir_ / "source";
    std::filesystem::create_directories(source / "sub");
    const std::string big = pattern(300000, 7);
    std::ofstream(source / "sub" / "big.bin", std::ios::binary) << big;
    std::ofstream(source / "small.txt") << "small\n";
    std::filesystem::create_symlink("sub/big.bin", source / "link");
    make_volume("64M", "-d " + source.string());
    FileDevice device(image_);
    FileSystem* fs = mount(device);
    ASSERT_NE(fs, nullptr);
    RefPtr<Node> root = fs->root();
    EXPECT_EQ(read_all(walk(root, "small.txt")), "small\n");
    EXPECT_EQ(read_all(walk(root, "sub/big.bin")), big);
    RefPtr<Node> link = walk(root, "link");
    ASSERT_TRUE(link);
    EXPECT_EQ(std::string(link->link_target().data(), link->link_target().size()), "sub/big.bin");
    EXPECT_EQ(root->entry_count(), 4u);  // lost+found, sub, small.txt, link
    link = {};
    root = {};
    ASSERT_EQ(fs->unmount(), 0);
    delete fs;
    expect_fsck_untouched();
}

TEST_F(Ext4Test, DirectoriesLinksRenamesAndRemovals) {
    make_volume();
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root();
        RefPtr<Node> a = create(root, "a", Type::kDirectory);
        RefPtr<Node> b = create(a, "b", Type::kDirectory);
        RefPtr<Node> f = create(b, "f", Type::kRegular);
        ASSERT_EQ(write_all(f, 0, "payload"), 7);
        EXPECT_EQ(a->add_entry("hard", f), 0);
        create(root, "short", Type::kSymlink, "a/b/f");
        const std::string long_target(200, 'x');
        create(root, "long", Type::kSymlink, long_target);
        // Many names: the directory grows past one block.
        for (int i = 0; i < 300; ++i) create(a, "file-with-a-long-name-" + std::to_string(i), Type::kRegular);
        for (int i = 0; i < 300; i += 2)
            ASSERT_EQ(a->remove_entry(("file-with-a-long-name-" + std::to_string(i)).c_str()), 0);
        EXPECT_EQ(a->entry_count(), 152u);  // b, hard, 150 files
        // A directory moves to another parent; a file replaces another.
        RefPtr<Node> c = create(root, "c", Type::kDirectory);
        ASSERT_EQ(a->rename("b", c, "b2"), 0);
        EXPECT_FALSE(a->lookup("b"));
        EXPECT_TRUE(walk(root, "c/b2/f"));
        create(c, "victim", Type::kRegular);
        ASSERT_EQ(a->rename("hard", c, "victim"), 0);
        EXPECT_EQ(read_all(walk(root, "c/victim")), "payload");
        // An empty directory goes; a file goes while still open.
        RefPtr<Node> empty = create(root, "empty", Type::kDirectory);
        EXPECT_EQ(root->remove_entry("empty"), 0);
        empty = {};
        EXPECT_EQ(root->remove_entry("long"), 0);
        f = {};
        b = {};
        a = {};
        c = {};
        root = {};
        ASSERT_EQ(fs->unmount(), 0);
        delete fs;
    }
    expect_fsck_untouched();
    EXPECT_EQ(debugfs_cat("/c/b2/f"), "payload");
    std::string out;
    run("debugfs -R 'stat /short' " + image_, &out);
    EXPECT_NE(out.find("Fast link dest: \"a/b/f\""), std::string::npos) << out;
}

TEST_F(Ext4Test, ManyExtentsSparseFilesAndTruncation) {
    make_volume("128M");
    const std::string one = pattern(4096 * 1200, 1), two = pattern(4096 * 1200, 2);
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root();
        RefPtr<Node> x = create(root, "x", Type::kRegular), y = create(root, "y", Type::kRegular);
        // Appended in turns a block at a time, each file gets one extent per block: past the
        // inode's four, past a leaf's 340.
        for (size_t at = 0; at < one.size(); at += 4096) {
            ASSERT_EQ(x->write(at, IoBuffer::kernel(one.data() + at), 4096), 4096);
            ASSERT_EQ(y->write(at, IoBuffer::kernel(two.data() + at), 4096), 4096);
        }
        EXPECT_EQ(read_all(x), one);
        RefPtr<Node> sparse = create(root, "sparse", Type::kRegular);
        ASSERT_EQ(write_all(sparse, 10 << 20, "end"), 3);
        const std::string head(100, '\0');
        std::string got(100, 'z');
        ASSERT_EQ(sparse->read(5 << 20, IoBuffer::kernel(got.data()), 100), 100);
        EXPECT_EQ(got, head);
        ASSERT_EQ(y->truncate(4096 * 500 + 100), 0);
        ASSERT_EQ(y->truncate(4096 * 501), 0);
        std::string expected = two.substr(0, 4096 * 500 + 100) + std::string(4096 - 100, '\0');
        EXPECT_EQ(read_all(y), expected);
        ASSERT_EQ(x->truncate(0), 0);
        EXPECT_EQ(x->size(), 0u);
        x = y = sparse = {};
        root = {};
        ASSERT_EQ(fs->unmount(), 0);
        delete fs;
    }
    expect_fsck_untouched();
}

// The workload of the crash tests: files written and fsync'd one by one, each also renamed
// and some removed. Returns how many fsyncs completed.
int crash_workload(FileSystem& fs, int files) {
    RefPtr<Node> root = fs.root();
    RefPtr<Node> dir;
    if (root->create("data", Type::kDirectory, 0755, {}, {}, dir) < 0 && !(dir = root->lookup("data"))) return 0;
    int synced = 0;
    for (int i = 0; i < files; ++i) {
        const std::string name = "f" + std::to_string(i);
        RefPtr<Node> f;
        if (dir->create(StringView(name.data(), name.size()), Type::kRegular, 0644, {}, {}, f) < 0) return synced;
        const std::string data = pattern(static_cast<size_t>(5000 + i * 3000), static_cast<unsigned>(i));
        if (write_all(f, 0, data) != static_cast<int64_t>(data.size())) return synced;
        if (i % 3 == 2 && dir->remove_entry(("f" + std::to_string(i - 1)).c_str()) < 0) return synced;
        if (f->sync() < 0) return synced;
        synced = i + 1;
    }
    return synced;
}

TEST_F(Ext4Test, EveryFsyncedWriteSurvivesACrashAtAnyPoint) {
    make_volume("16M");  // small: each crash point copies it three times and checks it twice
    const std::string pristine = (dir_ / "pristine.ext4").string();
    std::filesystem::copy_file(image_, pristine);
    constexpr int kFiles = 6;
    // How many device writes the whole workload takes, then a crash after every few of them.
    int64_t total;
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        ASSERT_EQ(crash_workload(*fs, kFiles), kFiles);
        total = device.writes();
        delete fs;
    }
    for (int64_t budget = 1; budget < total; budget += 4) {
        std::filesystem::copy_file(pristine, image_, std::filesystem::copy_options::overwrite_existing);
        int synced;
        {
            FileDevice device(image_);
            device.set_budget(budget);
            FileSystem* fs = try_mount(device);
            if (!fs) continue;  // the crash came during the mount itself
            synced = crash_workload(*fs, kFiles);
            delete fs;  // no unmount: the instance was killed
        }
        SCOPED_TRACE("crash after " + std::to_string(budget) + " of " + std::to_string(total) + " writes, " +
                     std::to_string(synced) + " fsyncs done");
        expect_fsck_clean(image_);
        // Our own mount replays the journal and finds every fsync'd file whole.
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> dir = walk(fs->root(), "data");
        for (int i = 0; i < synced; ++i) {
            // Iteration i + 1 removes f<i> when (i + 1) % 3 == 2: done if it was synced, perhaps
            // if it was the one cut short.
            if ((i + 1) % 3 == 2 && i + 1 <= synced) continue;
            RefPtr<Node> f = dir ? dir->lookup(("f" + std::to_string(i)).c_str()) : RefPtr<Node>();
            ASSERT_TRUE(f) << "f" << i;
            EXPECT_EQ(read_all(f), pattern(static_cast<size_t>(5000 + i * 3000), static_cast<unsigned>(i))) << "f" << i;
        }
        dir = {};
        ASSERT_EQ(fs->unmount(), 0);
        delete fs;
        expect_fsck_untouched();
    }
}

// 1 KiB blocks: the superblock is block 1's, the group descriptors follow it, and a file's
// blocks span groups of 8 MiB.
TEST_F(Ext4Test, OneKibibyteBlocks) {
    make_volume("24M", "", 1024);
    const std::string big = pattern(9 << 20, 3);
    {
        FileDevice device(image_);
        FileSystem* fs = mount(device);
        ASSERT_NE(fs, nullptr);
        RefPtr<Node> root = fs->root();
        RefPtr<Node> dir = create(root, "dir", Type::kDirectory);
        for (int i = 0; i < 40; ++i) create(dir, "name-" + std::to_string(i), Type::kRegular);
        RefPtr<Node> file = create(root, "big", Type::kRegular);
        ASSERT_EQ(write_all(file, 0, big), static_cast<int64_t>(big.size()));
        EXPECT_EQ(read_all(file), big);
        ASSERT_EQ(file->truncate(1 << 20), 0);
        file = dir = root = {};
        ASSERT_EQ(fs->unmount(), 0);
        delete fs;
    }
    expect_fsck_untouched();
    EXPECT_EQ(debugfs_cat("/big"), big.substr(0, 1 << 20));
}

TEST_F(Ext4Test, RefusesWhatItCannotMountSafely) {
    FileSystem* fs = nullptr;
    const char* error = "";
    ASSERT_EQ(run("truncate -s 16M " + image_), 0);
    {
        FileDevice device(image_);
        EXPECT_LT(FileSystem::mount(device, false, fs, error), 0);
        EXPECT_NE(std::string(error).find("not an ext4"), std::string::npos) << error;
    }
    std::string out;
    ASSERT_EQ(run("mke2fs -q -F -t ext4 -O 64bit " + image_, &out), 0) << out;
    {
        FileDevice device(image_);
        EXPECT_LT(FileSystem::mount(device, false, fs, error), 0);
        EXPECT_NE(std::string(error).find("incompatible features"), std::string::npos) << error;
    }
    ASSERT_EQ(run(std::string("mke2fs -q -F -t ext4 -O ^has_journal,") + kFeatures + " " + image_, &out), 0) << out;
    {
        FileDevice device(image_);
        EXPECT_LT(FileSystem::mount(device, false, fs, error), 0);
        EXPECT_NE(std::string(error).find("no journal"), std::string::npos) << error;
    }
}

}  // namespace
