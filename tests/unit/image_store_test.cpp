// Root file systems and the image store: reproducible archives, checks on the program an image
// runs, names and digests, removal with garbage collection, and damage that is noticed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "fake_elf.h"
#include "images/image_store.h"
#include "images/rootfs.h"

namespace kiln::images {
namespace {
namespace fs = std::filesystem;

using kiln::testing::fake_elf;

class ImageStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln-store-" + std::to_string(::getpid()));
        fs::create_directories(dir_ / "app" / "rootfs" / "bin");
        fs::create_directories(dir_ / "app" / "rootfs" / "www" / "empty");
        write("app/rootfs/bin/server", fake_elf(1));
        ::chmod((dir_ / "app/rootfs/bin/server").c_str(), 0755);
        write("app/rootfs/www/index.html", "hello\n");
        fs::create_symlink("/bin/server", dir_ / "app/rootfs/bin/link");
        write("kernel.elf", fake_elf(1));
    }
    void TearDown() override { fs::remove_all(dir_); }

    void write(const std::string& relative, const std::string& bytes) {
        std::ofstream(dir_ / relative, std::ios::binary) << bytes;
    }
    Kraftfile kraftfile(const std::string& extra = "cmd: /bin/server 8080\nrootfs: ./rootfs\n") {
        return parse_kraftfile("spec: v0.6\nname: web\n" + extra, (dir_ / "app" / "Kraftfile").string());
    }
    std::string kernel() const { return (dir_ / "kernel.elf").string(); }
    size_t blobs() const {
        return static_cast<size_t>(std::distance(fs::directory_iterator(dir_ / "state" / "images" / "sha256"), {}));
    }
    std::string build_error(const std::string& extra) {
        ImageStore store((dir_ / "state").string());
        try {
            store.build(kraftfile(extra), kernel());
        } catch (const std::exception& e) {
            return e.what();
        }
        return "";
    }

    fs::path dir_;
};

TEST_F(ImageStoreTest, ADirectoryBecomesASortedReproducibleCpio) {
    const auto entries = read_rootfs((dir_ / "app" / "rootfs").string());
    std::vector<std::string> paths;
    for (const auto& e : entries) paths.push_back(e.path);
    EXPECT_EQ(paths,
              (std::vector<std::string>{"/bin", "/bin/link", "/bin/server", "/www", "/www/empty", "/www/index.html"}));
    EXPECT_EQ(find_entry(entries, "/bin/link"), find_entry(entries, "/bin/server"));  // links are followed
    EXPECT_EQ(find_entry(entries, "/bin/server")->mode, S_IFREG | 0755u);
    const std::string cpio = write_cpio(entries);
    EXPECT_EQ(cpio.substr(0, 6), "070701");
    EXPECT_NE(cpio.find("TRAILER!!!"), std::string::npos);
    EXPECT_EQ(cpio.size() % 4, 0u);
    EXPECT_EQ(write_cpio(read_rootfs((dir_ / "app" / "rootfs").string())), cpio);  // same bytes again
}

TEST_F(ImageStoreTest, SymbolicLinksAreKeptAsTheyAreNotFollowedOnTheHost) {
    // A link to a path the host has (/bin/sh here), and one that climbs to a target the image
    // lacks: both stay links, whatever the host's own files are (Debian's packages have both).
    fs::create_symlink("/bin/sh", dir_ / "app/rootfs/bin/sh");
    fs::create_directories(dir_ / "app/rootfs/usr/lib/python3");
    fs::create_symlink("../../../etc/python3/sitecustomize.py", dir_ / "app/rootfs/usr/lib/python3/sitecustomize.py");
    const auto entries = read_rootfs((dir_ / "app" / "rootfs").string());
    std::map<std::string, std::string> links;
    for (const auto& e : entries)
        if ((e.mode & S_IFMT) == S_IFLNK) links[e.path] = e.data;
    EXPECT_EQ(links["/bin/sh"], "/bin/sh");
    EXPECT_EQ(links["/usr/lib/python3/sitecustomize.py"], "../../../etc/python3/sitecustomize.py");
}

TEST_F(ImageStoreTest, TarballsAndCpioArchivesGiveTheSameRootfsAsTheDirectory) {
    const std::string root = (dir_ / "app" / "rootfs").string();
    const std::string from_dir = write_cpio(read_rootfs(root));
    // Archived as root's: an archive's owners are kept, a directory's files are root's.
    ASSERT_EQ(std::system(("tar -C " + root + " --owner=0 --group=0 --numeric-owner -czf " +
                           (dir_ / "root.tar.gz").string() + " .")
                              .c_str()),
              0);
    EXPECT_EQ(write_cpio(read_rootfs((dir_ / "root.tar.gz").string())), from_dir);
    ASSERT_EQ(
        std::system(
            ("cd " + root + " && find . | cpio -o -H newc -R 0:0 --quiet > " + (dir_ / "root.cpio").string()).c_str()),
        0);
    EXPECT_EQ(write_cpio(read_rootfs((dir_ / "root.cpio").string())), from_dir);
}

TEST_F(ImageStoreTest, ATarballsOwnersAreKeptADirectorysAreRoots) {
    const std::string root = (dir_ / "app" / "rootfs").string();
    for (const auto& e : read_rootfs(root)) EXPECT_EQ(std::make_pair(e.uid, e.gid), std::make_pair(0u, 0u)) << e.path;
    ASSERT_EQ(std::system(("tar -C " + root + " --owner=1234 --group=70000 --numeric-owner -cf " +
                           (dir_ / "owned.tar").string() + " .")
                              .c_str()),
              0);
    const auto entries = read_rootfs((dir_ / "owned.tar").string());
    const RootfsEntry* server = find_entry(entries, "/bin/server");
    ASSERT_NE(server, nullptr);
    EXPECT_EQ(server->uid, 1234u);
    EXPECT_EQ(server->gid, 70000u);
    // In the cpio's header: c_uid and c_gid follow c_ino and c_mode.
    const std::string cpio = write_cpio(entries);
    const size_t name = cpio.rfind("bin/server");  // the entry's name, after the link's target
    ASSERT_NE(name, std::string::npos);
    EXPECT_EQ(cpio.substr(name - 110 + 22, 16), "000004d200011170");
}

TEST_F(ImageStoreTest, BadRootFileSystemsAreRefusedByName) {
    write("garbage.tar", std::string(3000, 'x'));
    EXPECT_THROW(read_rootfs((dir_ / "garbage.tar").string()), RootfsError);
    EXPECT_THROW(read_rootfs((dir_ / "nothing").string()), RootfsError);
    // A tarball whose entry climbs out of the image.
    fs::create_directories(dir_ / "evil" / "a");
    write("evil/a/x", "x");
    ASSERT_EQ(std::system(("tar -C " + (dir_ / "evil" / "a").string() + " -cf " + (dir_ / "evil.tar").string() +
                           " --transform 's,^,../../,' x 2>/dev/null")
                              .c_str()),
              0);
    try {
        read_rootfs((dir_ / "evil.tar").string());
        FAIL() << "an entry outside the image was accepted";
    } catch (const RootfsError& e) {
        EXPECT_NE(std::string(e.what()).find("leaves the image"), std::string::npos) << e.what();
    }
}

TEST_F(ImageStoreTest, BuildNamesFindsListsAndRemoves) {
    ImageStore store((dir_ / "state").string());
    const Image image = store.build(kraftfile(), kernel());
    EXPECT_EQ(image.reference(), "web:latest");
    EXPECT_EQ(image.digest.size(), 7u + 64u);
    EXPECT_EQ(image.manifest["cmd"], (nlohmann::json{"/bin/server", "8080"}));
    EXPECT_EQ(blobs(), 3u);                                              // kernel, rootfs, manifest
    EXPECT_EQ(store.build(kraftfile(), kernel()).digest, image.digest);  // same inputs, same image
    EXPECT_EQ(store.build(kraftfile(), kernel(), "web:v2").digest, image.digest);
    EXPECT_EQ(store.list().size(), 2u);
    EXPECT_EQ(store.find("web")->tag, "latest");
    EXPECT_EQ(store.find(image.digest.substr(7, 12))->digest, image.digest);
    EXPECT_FALSE(store.find("nope").has_value());

    // The rootfs blob really holds what the directory held.
    std::ifstream rootfs(store.blob_path(image.manifest["rootfs"]["digest"]), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(rootfs)), {});
    EXPECT_EQ(bytes, write_cpio(read_rootfs((dir_ / "app" / "rootfs").string())));

    EXPECT_EQ(store.remove("web:latest"), std::vector<std::string>{"web:latest"});
    EXPECT_EQ(blobs(), 3u);  // web:v2 still uses them
    const auto changed = store.build(kraftfile("cmd: /bin/server 9090\nrootfs: ./rootfs\n"), kernel(), "web:v3");
    EXPECT_NE(changed.digest, image.digest);
    EXPECT_EQ(blobs(), 4u);  // one more manifest; kernel and rootfs are shared
    EXPECT_EQ(store.remove(image.digest), std::vector<std::string>{"web:v2"});
    EXPECT_EQ(blobs(), 3u);
    store.remove("web:v3");
    EXPECT_EQ(blobs(), 0u);
    EXPECT_THROW(store.remove("web:v3"), StoreError);
    EXPECT_THROW(store.find("Bad Name"), StoreError);
}

TEST_F(ImageStoreTest, TheStoreOutlivesItsProcessAndNoticesDamage) {
    std::string digest;
    {
        ImageStore store((dir_ / "state").string());
        digest = store.build(kraftfile(), kernel()).digest;
    }
    ImageStore again((dir_ / "state").string());
    ASSERT_TRUE(again.find("web").has_value());
    write("state/images/sha256/" + digest.substr(7), "{\"tampered\": true}");
    try {
        again.list();
        FAIL() << "a damaged manifest was read";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("is corrupt"), std::string::npos) << e.what();
    }
}

TEST_F(ImageStoreTest, TheProgramMustBeInTheRootfsAndRunnable) {
    EXPECT_NE(build_error("cmd: /bin/missing\nrootfs: ./rootfs\n").find("cmd: /bin/missing is not in the rootfs"),
              std::string::npos);
    EXPECT_NE(build_error("cmd: /www\nrootfs: ./rootfs\n").find("cmd: /www is not a file"), std::string::npos);
    EXPECT_NE(build_error("cmd: /www/index.html\nrootfs: ./rootfs\n").find("is not an ELF executable"),
              std::string::npos);
    write("app/rootfs/bin/dynamic", fake_elf(3));  // PT_INTERP of no bytes
    EXPECT_NE(build_error("cmd: /bin/dynamic\nrootfs: ./rootfs\n").find("damaged interpreter path"), std::string::npos);
    // A dynamic program runs when its linker is in the rootfs, and is refused by name when not.
    std::string dynamic = fake_elf(3);
    const std::string linker = "/lib/ld.so";
    const uint64_t offset = dynamic.size(), size = linker.size() + 1;
    std::memcpy(&dynamic[64 + 8], &offset, 8);  // p_offset
    std::memcpy(&dynamic[64 + 32], &size, 8);   // p_filesz
    dynamic += linker + '\0';
    write("app/rootfs/bin/dynamic", dynamic);
    EXPECT_NE(build_error("cmd: /bin/dynamic\nrootfs: ./rootfs\n").find("linker /lib/ld.so is not in the rootfs"),
              std::string::npos);
    fs::create_directories(dir_ / "app/rootfs/lib");
    write("app/rootfs/lib/ld.so", fake_elf(1));
    EXPECT_EQ(build_error("cmd: /bin/dynamic\nrootfs: ./rootfs\n"), "");
    EXPECT_NE(build_error("cmd: /bin/server\n").find("the image has no rootfs"), std::string::npos);
    EXPECT_EQ(build_error("cmd: /bin/link\nrootfs: ./rootfs\n"), "");  // through the symbolic link
    EXPECT_EQ(build_error(""), "");                                    // a kernel alone
}

}  // namespace
}  // namespace kiln::images
