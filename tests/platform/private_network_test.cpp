// kilnd's private network against the real kernel: taps made on attach, deleted after detach on
// the reaper's thread, and none left behind by a kilnd that ends with deletions queued.
#include "network/private_network.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace kiln::network {
namespace {

class PrivateNetworkTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) FAIL() << "needs root for a network namespace: run the tests as root";
        dir_ = std::filesystem::temp_directory_path() / ("kiln-private-network-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir_);
    }
    void TearDown() override {
        if (!dir_.empty()) {
            PrivateNetwork(dir_.string()).destroy();
            std::filesystem::remove_all(dir_);
        }
    }
    std::filesystem::path dir_;
};

TEST_F(PrivateNetworkTest, DetachedTapsGoOnTheReapersThread) {
    PrivateNetwork network(dir_.string());
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < 4; ++i) {
        endpoints.push_back(
            PrivateNetwork::endpoint("0000000" + std::to_string(i) + "-aaaa-bbbb", network.allocate({})));
        network.attach(endpoints.back());
        ASSERT_TRUE(network.ns().find_link(endpoints.back().tap)) << endpoints.back().tap;
    }
    for (const auto& e : endpoints) network.detach(e);
    network.detach(PrivateNetwork::endpoint("never-attached", "10.77.0.99"));  // nothing to delete: no harm
    network.wait_detached();
    for (const auto& e : endpoints) EXPECT_FALSE(network.ns().find_link(e.tap)) << e.tap;
    EXPECT_TRUE(network.ns().find_link("kbr0"));
}

TEST_F(PrivateNetworkTest, AnEndingKilndDeletesWhatItQueued) {
    const Endpoint endpoint = PrivateNetwork::endpoint("11111111-aaaa-bbbb", "10.77.0.5");
    {
        PrivateNetwork network(dir_.string());
        network.attach(endpoint);
        network.detach(endpoint);
    }
    PrivateNetwork again(dir_.string());  // the namespace outlives kilnd; the tap did not
    EXPECT_FALSE(again.ns().find_link(endpoint.tap));
    EXPECT_TRUE(again.ns().find_link("kbr0"));
}

}  // namespace
}  // namespace kiln::network
