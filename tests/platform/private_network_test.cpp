// kilnd's private network against the real kernel: taps made on attach, deleted after detach on
// the reaper's thread, and none left behind by a kilnd that ends with deletions queued.
#include "network/private_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/if_ether.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "host/unique_fd.h"

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

// Many detached at once go as one batch (the doomed group), and only they: an attached tap, the
// bridge and its trunks stay. Then the bridge takes new taps in their place.
TEST_F(PrivateNetworkTest, ABatchOfDetachedTapsGoesTogetherAndNothingElse) {
    PrivateNetwork network(dir_.string());
    std::vector<std::string> taken;
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < 60; ++i) {
        taken.push_back(network.allocate(taken));
        endpoints.push_back(PrivateNetwork::endpoint("2222" + std::to_string(1000 + i) + "-aaaa", taken.back()));
        network.attach(endpoints.back());
    }
    const Endpoint kept = PrivateNetwork::endpoint("33333333-aaaa", "10.77.4.10");  // on kbr1, past a trunk
    network.attach(kept);
    for (const auto& e : endpoints) network.detach(e);
    network.wait_detached();
    for (const auto& e : endpoints) EXPECT_FALSE(network.ns().find_link(e.tap)) << e.tap;
    for (const char* link : {"kbr0", "kbr1", "kbr1-up", "kbr1-dn"}) EXPECT_TRUE(network.ns().find_link(link)) << link;
    EXPECT_TRUE(network.ns().find_link(kept.tap));
    network.attach(endpoints.front());  // the same name again, on the same bridge
    EXPECT_TRUE(network.ns().find_link(endpoints.front().tap));
}

// The gateway knows each instance's MAC from its attach on (no ARP broadcast to find it), and
// forgets it at its detach: the next instance at that address gets its own entry.
TEST_F(PrivateNetworkTest, EachInstanceHasAPermanentNeighbourEntryWhileAttached) {
    PrivateNetwork network(dir_.string());
    const Endpoint endpoint = PrivateNetwork::endpoint("44444444-aaaa", "10.77.0.42");
    const auto neighbours = [&] {
        return network.ns().run([] {
            std::string out;
            FILE* p = ::popen("ip -4 neigh show dev kbr0 nud permanent", "r");
            char line[256];
            while (p != nullptr && std::fgets(line, sizeof(line), p) != nullptr) out += line;
            if (p != nullptr) ::pclose(p);
            return out;
        });
    };
    network.attach(endpoint);
    EXPECT_NE(neighbours().find("10.77.0.42 lladdr 02:4b:0a:4d:00:2a PERMANENT"), std::string::npos) << neighbours();
    EXPECT_EQ(endpoint.mac, "02:4b:0a:4d:00:2a");
    network.detach(endpoint);
    EXPECT_EQ(neighbours().find("10.77.0.42 "), std::string::npos) << neighbours();
    network.detach(endpoint);  // twice: no harm
    const Endpoint next = PrivateNetwork::endpoint("55555555-aaaa", "10.77.0.42");
    network.attach(next);
    network.wait_detached();  // the first one's tap is gone; the address's entry is the new one's
    EXPECT_NE(neighbours().find("10.77.0.42 lladdr 02:4b:0a:4d:00:2a PERMANENT"), std::string::npos) << neighbours();
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

// The host's neighbour table holds an ARP entry for each instance the balancer reaches: far
// more than Linux's default cap of 1,024.
TEST_F(PrivateNetworkTest, TheHostsNeighbourTableHoldsTheWholeNetwork) {
    PrivateNetwork network(dir_.string());
    long cap = 0;
    std::ifstream("/proc/sys/net/ipv4/neigh/default/gc_thresh3") >> cap;
    EXPECT_GE(cap, 131072);
}

TEST(PrivateNetworkBridges, AThousandAddressesToABridge) {
    EXPECT_EQ(PrivateNetwork::bridge_for("10.77.0.2"), "kbr0");
    EXPECT_EQ(PrivateNetwork::bridge_for("10.77.3.231"), "kbr0");  // host 999
    EXPECT_EQ(PrivateNetwork::bridge_for("10.77.3.232"), "kbr1");  // host 1000
    EXPECT_EQ(PrivateNetwork::bridge_for("10.77.39.16"), "kbr10");
    EXPECT_EQ(PrivateNetwork::bridge_for("10.77.255.254"), "kbr65");
}

// The persistent tap `name`, opened as a guest's tender would, without the virtio header.
UniqueFd open_tap(netns::Namespace& ns, const std::string& name) {
    return UniqueFd(ns.run([&] {
        const int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        ifreq request{};
        std::memcpy(request.ifr_name, name.data(), name.size());
        request.ifr_flags = IFF_TAP | IFF_NO_PI;
        if (fd >= 0 && ::ioctl(fd, TUNSETIFF, &request) != 0) {
            ::close(fd);
            return -1;
        }
        return fd;
    }));
}

std::array<uint8_t, 6> mac_of(const Endpoint& endpoint) {
    std::array<uint8_t, 6> mac{};
    std::sscanf(endpoint.mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4],
                &mac[5]);
    return mac;
}

// "Who has `target`? Tell `from`", broadcast.
std::vector<uint8_t> arp_request(const Endpoint& from, const std::string& target) {
    std::vector<uint8_t> frame(sizeof(ether_header) + sizeof(ether_arp));
    auto* eth = reinterpret_cast<ether_header*>(frame.data());
    auto* arp = reinterpret_cast<ether_arp*>(frame.data() + sizeof(ether_header));
    const auto mac = mac_of(from);
    std::memset(eth->ether_dhost, 0xff, 6);
    std::memcpy(eth->ether_shost, mac.data(), 6);
    eth->ether_type = htons(ETHERTYPE_ARP);
    arp->arp_hrd = htons(ARPHRD_ETHER);
    arp->arp_pro = htons(ETHERTYPE_IP);
    arp->arp_hln = 6;
    arp->arp_pln = 4;
    arp->arp_op = htons(ARPOP_REQUEST);
    std::memcpy(arp->arp_sha, mac.data(), 6);
    const uint32_t sender = htonl(parse_ipv4(from.ip)), wanted = htonl(parse_ipv4(target));
    std::memcpy(arp->arp_spa, &sender, 4);
    std::memcpy(arp->arp_tpa, &wanted, 4);
    return frame;
}

// Waits up to two seconds for an ARP frame of `op` about `sender` (its sender address) on `tap`.
bool arp_arrives(int tap, uint16_t op, const std::string& sender) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    const uint32_t wanted = htonl(parse_ipv4(sender));
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd readable{tap, POLLIN, 0};
        if (::poll(&readable, 1, 100) <= 0) continue;
        uint8_t frame[2048];
        const ssize_t n = ::read(tap, frame, sizeof(frame));
        if (n < static_cast<ssize_t>(sizeof(ether_header) + sizeof(ether_arp))) continue;
        const auto* eth = reinterpret_cast<const ether_header*>(frame);
        const auto* arp = reinterpret_cast<const ether_arp*>(frame + sizeof(ether_header));
        if (ntohs(eth->ether_type) == ETHERTYPE_ARP && ntohs(arp->arp_op) == op &&
            std::memcmp(arp->arp_spa, &wanted, 4) == 0)
            return true;
    }
    return false;
}

// Two taps a thousand addresses apart are ports of two bridges, and still one segment: a
// broadcast from the second reaches the first, and the gateway on kbr0 answers it.
// Attached as kiln-vmm attaches, `far`'s ARP request for the gateway reaches `near` (a broadcast
// across the trunk when they are on two bridges) and the gateway answers it.
void expect_one_segment(PrivateNetwork& network, const Endpoint& near, const Endpoint& far) {
    auto& ns = network.ns();
    const UniqueFd near_tap = open_tap(ns, near.tap), far_tap = open_tap(ns, far.tap);
    ASSERT_TRUE(near_tap.valid() && far_tap.valid());
    ns.wait_forwarding(near.tap);
    ns.wait_forwarding(far.tap);
    const auto request = arp_request(far, network.gateway_string());
    ASSERT_EQ(::write(far_tap.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    EXPECT_TRUE(arp_arrives(near_tap.get(), ARPOP_REQUEST, far.ip)) << "the broadcast did not cross the trunk";
    EXPECT_TRUE(arp_arrives(far_tap.get(), ARPOP_REPLY, network.gateway_string())) << "no answer from the gateway";
}

TEST_F(PrivateNetworkTest, TapsOnTwoBridgesShareOneSegment) {
    PrivateNetwork network(dir_.string());
    const Endpoint near = PrivateNetwork::endpoint("22222222-aaaa-bbbb", "10.77.0.2");
    const Endpoint far = PrivateNetwork::endpoint("33333333-aaaa-bbbb", "10.77.3.234");
    network.attach(near);
    network.attach(far);
    auto& ns = network.ns();
    ASSERT_TRUE(ns.find_link("kbr1"));
    EXPECT_EQ(ns.find_link(near.tap)->master, ns.find_link("kbr0")->index);
    EXPECT_EQ(ns.find_link(far.tap)->master, ns.find_link("kbr1")->index);
    EXPECT_EQ(ns.find_link("kbr1-up")->master, ns.find_link("kbr0")->index);
    EXPECT_EQ(ns.find_link("kbr1-dn")->master, ns.find_link("kbr1")->index);

    // IPv4 only: no tap floods the bridges with IPv6 neighbour discovery as it comes up.
    for (const auto& link : {near.tap, far.tap, std::string("kbr0"), std::string("kbr1-up")}) {
        const std::string value = ns.run([&] {
            std::string text;
            std::ifstream("/proc/sys/net/ipv6/conf/" + link + "/disable_ipv6") >> text;
            return text;
        });
        EXPECT_EQ(value, "1") << link;
    }

    expect_one_segment(network, near, far);
}

// Spare taps made ahead (by kilnd's reconciler): an instance's attach renames one, puts it on its
// address's bridge and raises it, and it carries frames as a tap made on the attach does; with
// none left, attach makes one. A kilnd after finds the spares left and makes no more.
TEST_F(PrivateNetworkTest, AttachTakesASpareTapMadeAhead) {
    std::vector<int> spares;
    {
        PrivateNetwork network(dir_.string());
        auto& ns = network.ns();
        EXPECT_EQ(network.spare_taps(), 0u);
        network.refill_spare_taps();
        ASSERT_EQ(network.spare_taps(), PrivateNetwork::kSpareTaps);
        for (const char* name : {"ks0", "ks1"}) {
            const auto spare = ns.find_link(name);
            ASSERT_TRUE(spare) << name;
            EXPECT_EQ(spare->kind, "tun");
            EXPECT_EQ(spare->flags & IFF_UP, 0u) << name;
            EXPECT_EQ(spare->master, 0) << name;
            spares.push_back(spare->index);
        }
        const Endpoint near = PrivateNetwork::endpoint("66666666-aaaa-bbbb", "10.77.0.2");
        const Endpoint far = PrivateNetwork::endpoint("77777777-aaaa-bbbb", "10.77.3.234");  // on kbr1
        network.attach(near);
        network.attach(far);
        EXPECT_EQ(network.spare_taps(), 0u);
        EXPECT_FALSE(ns.find_link("ks0"));
        EXPECT_FALSE(ns.find_link("ks1"));
        const auto near_link = ns.find_link(near.tap), far_link = ns.find_link(far.tap);
        ASSERT_TRUE(near_link && far_link);
        EXPECT_EQ(near_link->index, spares[1]);
        EXPECT_EQ(far_link->index, spares[0]);
        EXPECT_NE(near_link->flags & IFF_UP, 0u);
        EXPECT_EQ(near_link->master, ns.find_link("kbr0")->index);
        EXPECT_EQ(far_link->master, ns.find_link("kbr1")->index);

        expect_one_segment(network, near, far);

        const Endpoint third = PrivateNetwork::endpoint("88888888-aaaa-bbbb", "10.77.0.3");
        network.attach(third);  // no spare left: made here
        EXPECT_TRUE(ns.find_link(third.tap));
        ASSERT_TRUE(network.next_spare_refill());
        std::this_thread::sleep_until(*network.next_spare_refill());  // not while a start that took one runs
        network.refill_spare_taps();
        EXPECT_FALSE(network.next_spare_refill());
        EXPECT_TRUE(ns.find_link("ks2"));
        EXPECT_TRUE(ns.find_link("ks3"));
    }
    PrivateNetwork again(dir_.string());
    EXPECT_EQ(again.spare_taps(), PrivateNetwork::kSpareTaps);
    again.refill_spare_taps();
    EXPECT_FALSE(again.ns().find_link("ks4")) << "the spares left were not found";
    const Endpoint next = PrivateNetwork::endpoint("99999999-aaaa-bbbb", "10.77.0.4");
    again.attach(next);
    EXPECT_EQ(again.spare_taps(), PrivateNetwork::kSpareTaps - 1);
    EXPECT_TRUE(again.ns().find_link(next.tap));
}

// A kilnd that ended after making a bridge but before its trunk: the next one finishes it.
TEST_F(PrivateNetworkTest, AHalfMadeBridgeIsFinished) {
    {
        PrivateNetwork network(dir_.string());
        network.ns().add_bridge("kbr2");
    }
    PrivateNetwork network(dir_.string());
    network.attach(PrivateNetwork::endpoint("44444444-aaaa-bbbb", "10.77.7.210"));  // host 2002
    auto& ns = network.ns();
    ASSERT_TRUE(ns.find_link("kbr2-up"));
    EXPECT_EQ(ns.find_link("kbr2-up")->master, ns.find_link("kbr0")->index);
    EXPECT_EQ(ns.find_link("kbr2-dn")->master, ns.find_link("kbr2")->index);
}

}  // namespace
}  // namespace kiln::network
