// Container image layers as a Kiln rootfs: whiteouts, opaque directories, replacements, hard
// links across layers, paths that leave the root; and what a container config says.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fs/cpio.h"
#include "images/container_image.h"

namespace kiln::images {
namespace {

struct Member {
    std::string path;
    unsigned type;        // S_IFREG, S_IFDIR, S_IFLNK; 0: a hard link to `content`
    std::string content;  // a file's bytes or a link's target
    int64_t uid = 0, gid = 0;
};

// A tarball of `members`, as libarchive writes one (pax).
std::string tarball(const std::vector<Member>& members) {
    std::unique_ptr<archive, decltype(&archive_write_free)> a(archive_write_new(), archive_write_free);
    archive_write_set_format_pax_restricted(a.get());
    std::vector<char> buffer(1 << 20);
    size_t used = 0;
    archive_write_open_memory(a.get(), buffer.data(), buffer.size(), &used);
    for (const Member& m : members) {
        std::unique_ptr<archive_entry, decltype(&archive_entry_free)> e(archive_entry_new(), archive_entry_free);
        archive_entry_set_pathname(e.get(), m.path.c_str());
        archive_entry_set_uid(e.get(), m.uid);
        archive_entry_set_gid(e.get(), m.gid);
        if (m.type == 0) {
            archive_entry_set_filetype(e.get(), AE_IFREG);
            archive_entry_set_hardlink(e.get(), m.content.c_str());
        } else {
            archive_entry_set_filetype(e.get(), m.type);
            archive_entry_set_perm(e.get(), m.type == S_IFDIR ? 0755 : 0644);
            if (m.type == S_IFLNK) archive_entry_set_symlink(e.get(), m.content.c_str());
            if (m.type == S_IFREG) archive_entry_set_size(e.get(), static_cast<la_int64_t>(m.content.size()));
        }
        archive_write_header(a.get(), e.get());
        if (m.type == S_IFREG) archive_write_data(a.get(), m.content.data(), m.content.size());
    }
    archive_write_close(a.get());
    return std::string(buffer.data(), used);
}

std::vector<std::string> paths(const std::vector<RootfsEntry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.path);
    return out;
}

std::vector<RootfsEntry> unpack(const std::vector<std::vector<Member>>& layers) {
    std::vector<std::string> tars;
    for (const auto& layer : layers) tars.push_back(tarball(layer));
    return unpack_layers(tars, {});
}

TEST(ContainerLayers, WhiteoutsRemoveWhatIsBelowOnly) {
    const auto entries = unpack({{{"d/e/f", S_IFREG, "f"}, {"keep", S_IFREG, "k"}, {"o/old", S_IFREG, "o"}},
                                 {{".wh.d", S_IFREG, ""}, {"o/.wh..wh..opq", S_IFREG, ""}, {"o/new", S_IFREG, "n"}}});
    EXPECT_EQ(paths(entries), (std::vector<std::string>{"/keep", "/o", "/o/new"}));
}

TEST(ContainerLayers, AFileReplacesADirectoryAndItsTree) {
    const auto entries = unpack({{{"d/f", S_IFREG, "f"}}, {{"d", S_IFLNK, "/elsewhere"}}});
    ASSERT_EQ(paths(entries), (std::vector<std::string>{"/d"}));
    EXPECT_EQ(entries[0].mode, S_IFLNK | 0777);
    EXPECT_EQ(entries[0].data, "/elsewhere");
}

TEST(ContainerLayers, HardLinksAcrossLayersAreCopies) {
    const auto entries = unpack({{{"bin/tool", S_IFREG, "program"}}, {{"bin/alias", 0, "bin/tool"}}});
    ASSERT_EQ(paths(entries), (std::vector<std::string>{"/bin", "/bin/alias", "/bin/tool"}));
    EXPECT_EQ(entries[1].data, "program");
    EXPECT_EQ(entries[1].mode, S_IFREG | 0644);
}

// Each entry's owner as a layer gives it, a later layer's replacing it, into the cpio's header
// fields, where the kernel's own reader finds them.
TEST(ContainerLayers, OwnersComeFromTheLayersIntoTheCpio) {
    const auto entries = unpack({{{"home/app", S_IFDIR, "", 1000, 1000},
                                  {"home/app/config", S_IFREG, "old", 1000, 1000},
                                  {"srv/data", S_IFREG, "d", 70000, 70001},
                                  {"etc/hosts", S_IFREG, "h"}},
                                 {{"home/app/config", S_IFREG, "new", 33, 34}, {"home/app/alias", 0, "srv/data"}}});
    const std::string cpio = write_cpio(entries);
    fs::CpioReader reader(reinterpret_cast<const uint8_t*>(cpio.data()), cpio.size());
    std::map<std::string, std::pair<uint32_t, uint32_t>> owners;
    for (fs::CpioEntry e; reader.next(e);) owners[std::string(e.name.data(), e.name.size())] = {e.uid, e.gid};
    EXPECT_EQ(reader.error(), fs::CpioError::kNone);
    using Owner = std::pair<uint32_t, uint32_t>;
    EXPECT_EQ(owners["home"], Owner(0, 0));  // implied by its files: root's
    EXPECT_EQ(owners["home/app"], Owner(1000, 1000));
    EXPECT_EQ(owners["home/app/config"], Owner(33, 34));
    EXPECT_EQ(owners["home/app/alias"], Owner(70000, 70001));  // a hard link: the original's
    EXPECT_EQ(owners["srv/data"], Owner(70000, 70001));
    EXPECT_EQ(owners["etc/hosts"], Owner(0, 0));
}

TEST(ContainerLayers, PathsThatLeaveTheRootAndMissingLinksAreNamed) {
    try {
        unpack_layers({tarball({{"../etc/passwd", S_IFREG, "x"}})}, {"layer sha256:abc"});
        FAIL() << "a path with .. was accepted";
    } catch (const RootfsError& e) {
        EXPECT_STREQ(e.what(), "layer sha256:abc: ../etc/passwd: a path that leaves the root file system");
    }
    EXPECT_THROW(unpack({{{"a", 0, "missing"}}}), RootfsError);
    EXPECT_THROW(unpack_layers({"not a tarball at all"}, {}), RootfsError);
}

TEST(ContainerConfig, EntrypointThenCmdAndThePlatform) {
    const auto config = parse_container_config(
        R"({"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],)"
        R"("Env":["A=1"],"WorkingDir":"/srv","ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"}}})");
    EXPECT_EQ(config.cmd, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));
    EXPECT_EQ(config.env, (std::vector<std::string>{"A=1"}));
    EXPECT_EQ(config.workdir, "/srv");
    EXPECT_EQ(config.exposed, (std::vector<std::string>{"80/tcp"}));
    EXPECT_EQ(config.labels.at("k"), "v");
    EXPECT_THROW(parse_container_config(R"({"architecture":"arm64","os":"linux"})"), RootfsError);
    EXPECT_THROW(parse_container_config(R"({"config":{"Cmd":"not a list"}})"), RootfsError);
    EXPECT_THROW(parse_container_config("[]"), RootfsError);
}

}  // namespace
}  // namespace kiln::images
