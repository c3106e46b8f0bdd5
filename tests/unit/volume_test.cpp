// Volumes: sizes, mount paths and `-v` specs as kiln and kilnd read them; the tender flags and
// kernel parameters an instance's start passes on; the store's rows and files (mke2fs for real),
// and the API's volume requests.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "api/request.h"
#include "store/sqlite.h"
#include "volumes/volume_spec.h"
#include "volumes/volume_store.h"

namespace kiln::volumes {
namespace {
namespace fs = std::filesystem;

TEST(VolumeSize, UnitsRoundedUpToMebibytes) {
    EXPECT_EQ(parse_size_mb("64M"), 64);
    EXPECT_EQ(parse_size_mb("64m"), 64);
    EXPECT_EQ(parse_size_mb("64Mi"), 64);
    EXPECT_EQ(parse_size_mb("64MB"), 64);
    EXPECT_EQ(parse_size_mb("100"), 100);  // MiB, as -m reads it
    EXPECT_EQ(parse_size_mb("1G"), 1024);
    EXPECT_EQ(parse_size_mb("2GiB"), 2048);
    EXPECT_EQ(parse_size_mb("8193K"), 9);  // rounded up
    EXPECT_EQ(parse_size_mb("1T"), kMaxSizeMb);
    for (const char* bad : {"", "M", "abc", "7M", "0", "-64M", "64X", "1.5G", "2T", "64 M", "99999999999999999G"})
        EXPECT_THROW(parse_size_mb(bad), std::invalid_argument) << bad;
}

TEST(MountPath, AbsoluteNormalizedAndPlain) {
    EXPECT_EQ(normalize_mount_path("/data"), "/data");
    EXPECT_EQ(normalize_mount_path("/data/"), "/data");
    EXPECT_EQ(normalize_mount_path("//a/./b//"), "/a/b");
    for (const char* bad : {"", "data", "/", "//", "/./", "/a:b", "/a b", "/a\tb", "/a/../b", "/a,b", "/a=b", "/\"a\""})
        EXPECT_THROW(normalize_mount_path(bad), std::invalid_argument) << bad;
    EXPECT_THROW(normalize_mount_path("/" + std::string(300, 'a')), std::invalid_argument);
}

TEST(VolumeSpecTest, MountPathsOfOneInstanceNeitherMeetNorNest) {
    EXPECT_EQ(mount_conflict("/data", "/data"), "two volumes at /data");
    EXPECT_EQ(mount_conflict("/data", "/data/logs"), "/data/logs lies inside the volume at /data");
    EXPECT_EQ(mount_conflict("/a/b/c", "/a"), "/a/b/c lies inside the volume at /a");
    for (const auto& [a, b] : {std::pair{"/data", "/database"}, {"/data", "/etc"}, {"/a/b", "/a/c"}, {"/ab", "/a"}})
        EXPECT_EQ(mount_conflict(a, b), "") << a << " " << b;
}

TEST(VolumeSpecTest, NameMountPathAndMode) {
    auto s = parse_volume_spec("data:/var/lib/data/");
    EXPECT_EQ(s.name, "data");
    EXPECT_EQ(s.at, "/var/lib/data");
    EXPECT_FALSE(s.readonly);
    s = parse_volume_spec("conf:/etc/app:ro");
    EXPECT_EQ(s.at, "/etc/app");
    EXPECT_TRUE(s.readonly);
    EXPECT_FALSE(parse_volume_spec("conf:/etc/app:rw").readonly);
    for (const char* bad : {"data", "data:", ":/d", "data:d", "data:/", "./here:/d", "/host:/d", "Data:/d",
                            "data:/d:rx", "data:/d:ro:x", "da ta:/d"})
        EXPECT_THROW(parse_volume_spec(bad), std::invalid_argument) << bad;
    try {
        parse_volume_spec("/srv/data:/data");
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("named volumes, not host directories"), std::string::npos) << e.what();
    }
}

TEST(VolumeArguments, TenderFlagsAndKernelParametersInTheSameOrder) {
    const std::vector<VolumeMount> mounts = {{"/s/volumes/a.ext4", "/data", false},
                                             {"/s/volumes/b.ext4", "/conf", true}};
    EXPECT_EQ(tender_volume_flags(mounts), (std::vector<std::string>{"--volume", "path=/s/volumes/a.ext4", "--volume",
                                                                     "path=/s/volumes/b.ext4,ro"}));
    EXPECT_EQ(kernel_volume_parameters(mounts), "kiln.volume=/data kiln.volume=/conf:ro");
    EXPECT_TRUE(tender_volume_flags({}).empty());
    EXPECT_EQ(kernel_volume_parameters({}), "");
}

class VolumeStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("kiln-volume-store-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
        open();
    }
    void TearDown() override {
        store_.reset();
        db_.reset();
        fs::remove_all(dir_);
    }
    void open() {
        store_.reset();
        db_.reset();
        db_ = std::make_unique<store::Database>((dir_ / "kiln.db").string());
        store_ = std::make_unique<VolumeStore>(*db_, dir_.string());
    }
    // e2fsck -fn's status: 0 if the file system is clean.
    static int check(const std::string& file) {
        return std::system(("/usr/sbin/e2fsck -fn " + file + " >/dev/null 2>&1").c_str());
    }
    fs::path dir_;
    std::unique_ptr<store::Database> db_;
    std::unique_ptr<VolumeStore> store_;
};

TEST_F(VolumeStoreTest, CreatedCheckedClonedAndRemoved) {
    const Volume v = store_->create("data", 16);
    EXPECT_EQ(v.file, (dir_ / "volumes" / (v.uuid + ".ext4")).string());
    EXPECT_EQ(fs::file_size(v.file), uint64_t{16} << 20);
    EXPECT_EQ(check(v.file), 0);
    EXPECT_THROW(store_->create("data", 16), store::DatabaseError);
    const Volume copy = store_->clone(v, "copy");
    EXPECT_EQ(fs::file_size(copy.file), uint64_t{16} << 20);
    EXPECT_EQ(check(copy.file), 0);
    open();  // as a restarted kilnd finds them
    ASSERT_EQ(store_->list().size(), 2u);
    EXPECT_EQ(store_->find("data")->uuid, v.uuid);
    EXPECT_EQ(store_->find(copy.uuid)->name, "copy");
    store_->remove(*store_->find("data"));
    EXPECT_FALSE(fs::exists(v.file));
    EXPECT_FALSE(store_->find("data"));
}

TEST_F(VolumeStoreTest, FilesWithoutARowAreRemovedAtStart) {
    const Volume v = store_->create("data", 8);
    std::ofstream(dir_ / "volumes" / "left.part") << "half made";
    std::ofstream(dir_ / "volumes" / "0000.ext4") << "its row never written";
    open();
    EXPECT_TRUE(fs::exists(v.file));
    EXPECT_FALSE(fs::exists(dir_ / "volumes" / "left.part"));
    EXPECT_FALSE(fs::exists(dir_ / "volumes" / "0000.ext4"));
}

TEST_F(VolumeStoreTest, AttachmentsInDeviceOrder) {
    const Volume a = store_->create("a", 8), b = store_->create("b", 8);
    store_->attach({b.uuid, "i1", "/b", true});
    store_->attach({a.uuid, "i1", "/a", false});
    store_->attach({b.uuid, "i2", "/b", true});
    EXPECT_THROW(store_->attach({a.uuid, "i1", "/other", false}), store::DatabaseError);  // twice
    EXPECT_THROW(store_->attach({a.uuid, "i2", "/b", false}), store::DatabaseError);      // the same path
    const auto mounts = store_->mounts_of("i1");
    ASSERT_EQ(mounts.size(), 2u);
    EXPECT_EQ(mounts[0].file, b.file);
    EXPECT_EQ(mounts[0].at, "/b");
    EXPECT_TRUE(mounts[0].readonly);
    EXPECT_EQ(mounts[1].file, a.file);
    EXPECT_EQ(kernel_volume_parameters(mounts), "kiln.volume=/b:ro kiln.volume=/a");
    EXPECT_EQ(store_->find("b")->attachments.size(), 2u);
    store_->detach(b.uuid, "i1");
    EXPECT_EQ(store_->mounts_of("i1").size(), 1u);
    store_->detach_instance("i2");
    EXPECT_TRUE(store_->find("b")->attachments.empty());
}

TEST(VolumeRequests, CreateAttachDetachClone) {
    using api::ApiError;
    EXPECT_EQ(api::parse_volume_create(R"({"name": "data", "size_mb": 64})").size_mb, 64);
    EXPECT_FALSE(api::parse_volume_create(R"({"size_mb": 64})").name);
    for (const char* bad :
         {R"({"name": "data"})", R"({"name": "data", "size_mb": 4})", R"({"name": "data", "size_mb": "64"})",
          R"({"name": "Data", "size_mb": 64})", R"({"name": "data", "size_mb": 64, "colour": 1})"})
        EXPECT_THROW(api::parse_volume_create(bad), ApiError) << bad;
    auto a = api::parse_volume_attach(R"({"attach_to": {"name": "web"}, "at": "/data/", "readonly": true})");
    EXPECT_EQ(a.id, "web");
    EXPECT_EQ(a.at, "/data");
    EXPECT_TRUE(a.readonly);
    EXPECT_EQ(api::parse_volume_attach(R"({"instance": "web", "at": "/d"})").id, "web");
    for (const char* bad :
         {R"({"at": "/d"})", R"({"attach_to": {"name": "web"}})", R"({"attach_to": {"name": "web"}, "at": "d"})",
          R"({"attach_to": {}, "at": "/d"})", R"({"attach_to": {"name": "web"}, "instance": "web", "at": "/d"})"})
        EXPECT_THROW(api::parse_volume_attach(bad), ApiError) << bad;
    EXPECT_EQ(api::parse_volume_detach(R"({"from": {"uuid": "7f40"}})"), "7f40");
    EXPECT_THROW(api::parse_volume_detach("{}"), ApiError);
    EXPECT_EQ(api::parse_volume_clone(R"({"name": "copy"})"), "copy");
    EXPECT_THROW(api::parse_volume_clone("{}"), ApiError);
}

TEST(VolumeRequests, AnInstancesVolumes) {
    const auto r = api::parse_create(
        R"({"image": "web", "volumes": [{"name": "data", "at": "/data"}, {"uuid": "7f40", "at": "/c", "readonly": true}]})");
    ASSERT_EQ(r.volumes.size(), 2u);
    EXPECT_EQ(r.volumes[0].id, "data");
    EXPECT_FALSE(r.volumes[0].readonly);
    EXPECT_EQ(r.volumes[1].id, "7f40");
    EXPECT_TRUE(r.volumes[1].readonly);
    for (const char* bad : {R"({"image": "web", "volumes": {}})", R"({"image": "web", "volumes": [{"at": "/d"}]})",
                            R"({"image": "web", "volumes": [{"name": "a", "at": "/"}]})",
                            R"({"image": "web", "volumes": [{"name": "a", "at": "/d"}, {"name": "b", "at": "/d/"}]})",
                            R"({"image": "web", "volumes": [{"name": "a", "at": "/d", "size_mb": 9}]})"})
        EXPECT_THROW(api::parse_create(bad), api::ApiError) << bad;
}

}  // namespace
}  // namespace kiln::volumes
