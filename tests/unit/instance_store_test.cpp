// The instance store's narrow reads against a real SQLite file: those with a tender, a service's
// own (oldest first), and the addresses in use; what kilnd reads every 50 ms and on each wake
// instead of every row.
#include "instances/instance_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "store/sqlite.h"

namespace kiln::instances {
namespace {

class InstanceStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        path_ = std::filesystem::temp_directory_path() / ("kiln-instance-store-" + std::to_string(::getpid()) + ".db");
        db_ = std::make_unique<store::Database>(path_.string());
        store_ = std::make_unique<InstanceStore>(*db_);
    }
    void TearDown() override {
        store_.reset();
        db_.reset();
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_.string() + suffix);
    }
    void add(const std::string& name, const char* state, const std::string& service = "", const std::string& ip = "") {
        Instance i;
        i.uuid = new_uuid();
        i.name = name;
        i.image = "web";
        i.state = state;
        i.service = service;
        i.ip = ip;
        i.created_ns = ++clock_;
        store_->insert(i);
    }
    static std::vector<std::string> names(const std::vector<Instance>& list) {
        std::vector<std::string> out;
        for (const auto& i : list) out.push_back(i.name);
        return out;
    }

    std::filesystem::path path_;
    std::unique_ptr<store::Database> db_;
    std::unique_ptr<InstanceStore> store_;
    int64_t clock_ = 0;
};

TEST_F(InstanceStoreTest, LiveAreThoseWithATender) {
    add("a", kStopped);
    add("b", kStarting);
    add("c", kRunning);
    add("d", kStandby);
    add("e", kStopping);
    auto live = names(store_->list_live());
    std::sort(live.begin(), live.end());
    EXPECT_EQ(live, (std::vector<std::string>{"b", "c", "e"}));
    EXPECT_EQ(store_->list().size(), 5u);
}

TEST_F(InstanceStoreTest, AServicesOwnOldestFirst) {
    add("s1-2", kStandby, "svc-1");
    add("other", kRunning, "svc-2");
    add("lone", kRunning);
    add("s1-1", kRunning, "svc-1");
    EXPECT_EQ(names(store_->list_of_service("svc-1")), (std::vector<std::string>{"s1-2", "s1-1"}));
    EXPECT_TRUE(store_->list_of_service("nobody").empty());
}

TEST_F(InstanceStoreTest, AddressesInUse) {
    add("a", kRunning, "", "10.77.0.2");
    add("b", kStopped);
    add("c", kStandby, "svc", "10.77.3.232");
    auto ips = store_->addresses();
    std::sort(ips.begin(), ips.end());
    EXPECT_EQ(ips, (std::vector<std::string>{"10.77.0.2", "10.77.3.232"}));
}

}  // namespace
}  // namespace kiln::instances
