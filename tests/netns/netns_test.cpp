// The host networking library against the real kernel: namespaces, bridge, taps, veths, commands
// inside, and the sweep of what a dead process left. Every object is RAII, so a failing assertion
// still deletes what the test made; a crash is cleaned up by the next run's sweep.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstring>
#include <set>

#include "net/tap.h"
#include "netns/error.h"
#include "netns/names.h"
#include "netns/namespace.h"

namespace kiln::netns {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPrefix = "kt";
constexpr const char* kSweepPrefix = "kts";  // only the sweep test uses it

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Runs a command in the host's namespace and returns its output; fails the test if it fails.
std::string host_command(const std::vector<std::string>& argv) {
    const CommandResult result = run_process(-1, argv, 30s, "host");
    EXPECT_EQ(result.status, 0) << argv[0] << " " << argv[1] << ": " << result.output;
    return result.output;
}

std::set<std::string> host_links() {
    std::set<std::string> names;
    for (const Link& link : Rtnetlink("host").links()) names.insert(link.name);
    return names;
}

std::vector<std::string> namespaces_owned_by(pid_t pid, const std::string& prefix) {
    std::vector<std::string> names;
    DIR* dir = ::opendir("/run/netns");
    if (dir == nullptr) return names;
    while (const dirent* entry = ::readdir(dir))
        if (name_owner(entry->d_name, prefix) == pid) names.emplace_back(entry->d_name);
    ::closedir(dir);
    return names;
}

template <typename F>
std::string error_of(F&& fn) {
    try {
        fn();
    } catch (const NetnsError& e) {
        return e.what();
    }
    return "(no NetnsError)";
}

class NetnsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // Whatever a crashed earlier run left goes first.
        if (::geteuid() == 0) sweep_stale(kPrefix);
    }
    void SetUp() override {
        if (::geteuid() != 0) FAIL() << "network namespaces need root: run the tests as root";
    }
    static std::string name(const std::string& what) { return owned_name(kPrefix, what); }
};

TEST_F(NetnsTest, CreatesANamespaceAsIpNetnsAddDoesAndDeletesIt) {
    std::string path, ns_name;
    {
        Namespace ns(name("a"));
        path = ns.path();
        ns_name = ns.name();
        EXPECT_EQ(path, "/run/netns/" + ns_name);
        EXPECT_TRUE(exists(path));
        EXPECT_TRUE(contains(host_command({"ip", "netns", "list"}), ns_name));
        // lo is up; nothing else is there.
        const std::string links = host_command({"ip", "-n", ns_name, "-o", "link"});
        EXPECT_TRUE(contains(links, "lo: <LOOPBACK,UP,LOWER_UP>")) << links;
        EXPECT_EQ(std::count(links.begin(), links.end(), '\n'), 1) << links;
        // `ip netns exec` enters it.
        const std::string inside = host_command({"ip", "netns", "exec", ns_name, "ip", "-o", "link"});
        EXPECT_EQ(inside, links);

        const std::string error = error_of([&] { Namespace again(ns_name); });
        EXPECT_TRUE(contains(error, ns_name) && contains(error, "exists")) << error;
        EXPECT_TRUE(exists(path));  // the failed second one did not remove the first
    }
    EXPECT_FALSE(exists(path));
    EXPECT_FALSE(contains(host_command({"ip", "netns", "list"}), ns_name));
}

TEST_F(NetnsTest, RefusesBadNames) {
    for (const char* bad : {"", ".", "..", "a/b"})
        EXPECT_TRUE(contains(error_of([&] { Namespace ns(bad); }), "not a usable")) << bad;
    Namespace ns(name("names"));
    const std::string error = error_of([&] { ns.add_bridge("a-name-too-long-for-linux"); });
    EXPECT_TRUE(contains(error, "a-name-too-long-for-linux")) << error;
}

TEST_F(NetnsTest, BridgeAndTapsStayInsideTheNamespace) {
    const std::set<std::string> host_before = host_links();
    Namespace ns(name("br"));
    ns.add_bridge("br0", Ipv4Prefix::parse("10.77.0.1/24"));
    ns.add_tap("tap0", "br0");
    ns.add_tap("tap1", "br0");
    ns.add_tap("loose");  // no bridge

    const auto bridge = ns.find_link("br0");
    ASSERT_TRUE(bridge.has_value());
    EXPECT_EQ(bridge->kind, "bridge");
    EXPECT_TRUE(bridge->flags & IFF_UP);
    for (const char* tap_name : {"tap0", "tap1"}) {
        const auto tap = ns.find_link(tap_name);
        ASSERT_TRUE(tap.has_value()) << tap_name;
        EXPECT_EQ(tap->kind, "tun");
        EXPECT_EQ(tap->master, bridge->index);
        EXPECT_TRUE(tap->flags & IFF_UP);
    }
    EXPECT_EQ(ns.find_link("loose")->master, 0);

    // The bridge keeps its own address when a port with a lower one joins (guests cache it).
    const auto bridge_mac = bridge->mac;
    EXPECT_EQ(bridge_mac[0] & 0x03, 0x02) << "not a locally administered unicast address";
    host_command({"ip", "-n", ns.name(), "link", "set", "tap1", "address", "00:00:00:00:00:02"});
    ns.add_tap("tap9", "br0");
    EXPECT_EQ(ns.find_link("br0")->mac, bridge_mac);
    ns.delete_link("tap9");

    const std::string details = host_command({"ip", "-n", ns.name(), "-d", "link", "show", "tap0"});
    EXPECT_TRUE(contains(details, "master br0")) << details;
    EXPECT_TRUE(contains(details, "tap")) << details;
    const std::string addresses = host_command({"ip", "-n", ns.name(), "addr", "show", "br0"});
    EXPECT_TRUE(contains(addresses, "inet 10.77.0.1/24 brd 10.77.0.255")) << addresses;

    EXPECT_EQ(host_links(), host_before);  // nothing appeared on the host

    // Errors name the namespace and the object.
    std::string error = error_of([&] { ns.add_tap("tap0", "br0"); });
    EXPECT_TRUE(contains(error, ns.name()) && contains(error, "tap0")) << error;
    error = error_of([&] { ns.add_bridge("br0"); });
    EXPECT_TRUE(contains(error, "add bridge br0") && contains(error, "File exists")) << error;
    error = error_of([&] { ns.add_tap("tap2", "nobridge"); });
    EXPECT_TRUE(contains(error, "nobridge")) << error;
    error = error_of([&] { ns.add_address("br0", Ipv4Prefix::parse("10.77.0.1/24")); });
    EXPECT_TRUE(contains(error, "10.77.0.1/24") && contains(error, "br0")) << error;

    ns.delete_link("tap1");
    EXPECT_FALSE(ns.find_link("tap1").has_value());
}

// kiln-vmm's way of attaching (Tap::open, TUNSETIFF by name) from inside the namespace reaches
// the namespace's tap, and through the bridge the gateway address: an ARP request written where
// the guest would write it is answered by 10.77.0.1.
TEST_F(NetnsTest, KilnVmmsTapOpenedInsideReachesTheBridge) {
    Namespace ns(name("arp"));
    ns.add_bridge("br0", Ipv4Prefix::parse("10.77.0.1/24"));
    ns.add_tap("tap0", "br0");
    const vmm::Tap tap = ns.run([] { return vmm::Tap::open("tap0"); });
    ns.wait_forwarding("tap0");

    constexpr size_t kVnetHeader = 12;  // kiln-vmm's virtio_net_hdr, all zero: no offload
    const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x05};
    std::vector<uint8_t> frame(kVnetHeader, 0);
    auto put = [&](std::initializer_list<uint8_t> bytes) { frame.insert(frame.end(), bytes.begin(), bytes.end()); };
    put({0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    frame.insert(frame.end(), guest_mac, guest_mac + 6);
    put({0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01});  // ARP request, IPv4 over Ethernet
    frame.insert(frame.end(), guest_mac, guest_mac + 6);
    put({10, 77, 0, 5, 0, 0, 0, 0, 0, 0, 10, 77, 0, 1});
    frame.resize(kVnetHeader + 60, 0);  // minimum Ethernet frame
    // Asked again every 200 ms, as a guest's ARP would: the bridge's own carrier comes up a moment
    // after its first port forwards (the kernel's linkwatch work), and a reply sent before that
    // is dropped.
    bool answered = false;
    auto next_ask = std::chrono::steady_clock::now();
    const auto deadline = next_ask + 10s;
    while (!answered && std::chrono::steady_clock::now() < deadline) {
        if (std::chrono::steady_clock::now() >= next_ask) {
            ASSERT_EQ(::write(tap.fd(), frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
            next_ask += 200ms;
        }
        pollfd p{tap.fd(), POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        uint8_t in[2048];
        const ssize_t n = ::read(tap.fd(), in, sizeof(in));
        if (n < static_cast<ssize_t>(kVnetHeader + 42)) continue;
        const uint8_t* eth = in + kVnetHeader;
        const uint8_t reply_sender[4] = {10, 77, 0, 1};
        answered = std::memcmp(eth, guest_mac, 6) == 0 && eth[12] == 0x08 && eth[13] == 0x06 && eth[21] == 2 &&
                   std::memcmp(eth + 28, reply_sender, 4) == 0;
    }
    EXPECT_TRUE(answered) << "no ARP reply from 10.77.0.1 through the tap";
}

TEST_F(NetnsTest, VethConnectsTwoNamespaces) {
    Namespace a(name("va")), b(name("vb"));
    add_veth({a, "veth0", Ipv4Prefix::parse("10.78.0.1/24")}, {b, "veth0", Ipv4Prefix::parse("10.78.0.2/24")});
    EXPECT_EQ(a.find_link("veth0")->kind, "veth");
    EXPECT_EQ(b.find_link("veth0")->kind, "veth");

    const CommandResult ping = a.run_command({"ping", "-c", "1", "-W", "5", "10.78.0.2"});
    EXPECT_EQ(ping.status, 0) << ping.output;

    // A socket made inside a namespace stays there: a server in b, reached from a.
    UniqueFd server = b.run([] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(0x0a4e0002);  // 10.78.0.2
        if (::bind(s.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || ::listen(s.get(), 1) != 0)
            throw system_error("listen");
        return s;
    });
    sockaddr_in bound{};
    socklen_t length = sizeof(bound);
    ASSERT_EQ(::getsockname(server.get(), reinterpret_cast<sockaddr*>(&bound), &length), 0);
    UniqueFd client = a.run([&] {
        UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(s.get(), reinterpret_cast<sockaddr*>(&bound), sizeof(bound)) != 0) throw system_error("connect");
        return s;
    });
    UniqueFd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted.valid());
    ASSERT_EQ(::write(client.get(), "hello", 5), 5);
    char buffer[8] = {};
    ASSERT_EQ(::read(accepted.get(), buffer, sizeof(buffer)), 5);
    EXPECT_STREQ(buffer, "hello");

    // The host cannot reach either end.
    EXPECT_NE(run_process(-1, {"ping", "-c", "1", "-W", "1", "10.78.0.2"}, 10s, "host").status, 0);
}

TEST_F(NetnsTest, RunsCommandsInsideAndReportsFailures) {
    Namespace ns(name("cmd"));
    const CommandResult links = ns.run_command({"ip", "-o", "link"});
    EXPECT_EQ(links.status, 0);
    EXPECT_TRUE(contains(links.output, "lo:") && !contains(links.output, "eth0")) << links.output;
    EXPECT_EQ(ns.run_command({"sh", "-c", "echo out; echo err >&2; exit 3"}).status, 3);
    EXPECT_EQ(ns.run_command({"sh", "-c", "echo out; echo err >&2"}).output, "out\nerr\n");

    const CommandResult slow = ns.run_command({"sleep", "10"}, 200ms);
    EXPECT_TRUE(slow.timed_out);

    Process sleeper = ns.spawn({"sleep", "30"});
    EXPECT_TRUE(sleeper.running());
    EXPECT_FALSE(sleeper.wait_for(10ms).has_value());
    sleeper.signal(SIGTERM);
    EXPECT_EQ(sleeper.wait(), 128 + SIGTERM);
    EXPECT_FALSE(sleeper.running());

    const std::string error = error_of([&] { ns.spawn({"/nonexistent/kiln-vmm", "--help"}); });
    EXPECT_TRUE(contains(error, ns.name()) && contains(error, "/nonexistent/kiln-vmm") &&
                contains(error, "No such file"))
        << error;
}

TEST_F(NetnsTest, LeavesNothingBehind) {
    const std::set<std::string> host_before = host_links();
    {
        Namespace a(name("la")), b(name("lb"));
        a.add_bridge("br0", Ipv4Prefix::parse("10.77.0.1/24"));
        a.add_tap("tap0", "br0");
        add_veth({a, "veth0"}, {b, "veth1"});
        Process sleeper = a.spawn({"sleep", "30"});  // killed and reaped before a is deleted
        EXPECT_EQ(namespaces_owned_by(::getpid(), kPrefix).size(), 2u);
    }
    EXPECT_TRUE(namespaces_owned_by(::getpid(), kPrefix).empty());
    std::set<std::string> host_after = host_links();
    std::erase_if(host_after, [](const std::string& n) { return name_owner(n, kSweepPrefix); });
    EXPECT_EQ(host_after, host_before);
}

TEST(NetnsNames, CarryTheOwnersPid) {
    EXPECT_EQ(owned_name("kt", "net", 4242), "kt-4242-net");
    EXPECT_EQ(name_owner("kt-4242-net", "kt"), 4242);
    EXPECT_EQ(name_owner("kt-4242-", "kt"), 4242);  // owned_name(prefix, "")
    EXPECT_EQ(name_owner("kt-4242", "kt"), std::nullopt);
    EXPECT_EQ(name_owner("kt--x", "kt"), std::nullopt);
    EXPECT_EQ(name_owner("kt-x1-y", "kt"), std::nullopt);
    EXPECT_EQ(name_owner("kts-4242-net", "kt"), std::nullopt);
    EXPECT_EQ(name_owner("kt-0-net", "kt"), std::nullopt);
    EXPECT_EQ(name_owner("kt-99999999999-net", "kt"), std::nullopt);
}

TEST(NetnsAddresses, Parse) {
    const Ipv4Prefix p = Ipv4Prefix::parse("10.77.0.1/24");
    EXPECT_EQ(p.address, 0x0a4d0001u);
    EXPECT_EQ(p.length, 24);
    EXPECT_EQ(p.to_string(), "10.77.0.1/24");
    EXPECT_EQ(p.broadcast(), 0x0a4d00ffu);
    EXPECT_EQ(Ipv4Prefix::parse("10.0.0.9").length, 32);
    EXPECT_EQ(Ipv4Prefix::parse("0.0.0.0/0").broadcast(), 0xffffffffu);
    for (const char* bad : {"", "10.77.0.1/", "10.77.0.1/33", "10.77.0/24", "10.77.0.1/2x", "x"})
        EXPECT_THROW(Ipv4Prefix::parse(bad), NetnsError) << bad;
}

// Removes names even if the test fails half way.
struct HostCleanup {
    std::vector<std::vector<std::string>> commands;
    ~HostCleanup() {
        for (const auto& argv : commands) run_process(-1, argv, 10s, "cleanup");
    }
};

TEST(NetnsSweep, RemovesWhatADeadOwnerLeftAndNothingElse) {
    if (::geteuid() != 0) FAIL() << "network namespaces need root: run the tests as root";
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ASSERT_GT(child, 0);
    ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // `child` is now a dead owner

    const std::string stale_ns = owned_name(kSweepPrefix, "ns", child);
    const std::string stale_file = owned_name(kSweepPrefix, "file", child);  // crashed mid-create
    const std::string stale_a = owned_name(kSweepPrefix, "a", child);
    const std::string stale_b = owned_name(kSweepPrefix, "b", child);
    HostCleanup cleanup;
    cleanup.commands = {{"ip", "netns", "delete", stale_ns},
                        {"rm", "-f", "/run/netns/" + stale_file},
                        {"ip", "link", "delete", stale_a}};
    host_command({"ip", "netns", "add", stale_ns});
    host_command({"touch", "/run/netns/" + stale_file});
    host_command({"ip", "link", "add", stale_a, "type", "veth", "peer", "name", stale_b});
    Namespace live(owned_name(kSweepPrefix, "live"));

    const SweepResult swept = sweep_stale(kSweepPrefix);

    std::vector<std::string> namespaces = swept.namespaces;
    std::sort(namespaces.begin(), namespaces.end());
    EXPECT_EQ(namespaces, (std::vector<std::string>{stale_file, stale_ns}));
    ASSERT_EQ(swept.links.size(), 1u);  // the peer went with the first end
    EXPECT_TRUE(swept.links[0] == stale_a || swept.links[0] == stale_b);
    EXPECT_FALSE(exists("/run/netns/" + stale_ns));
    EXPECT_FALSE(exists("/run/netns/" + stale_file));
    const std::set<std::string> links = host_links();
    EXPECT_EQ(links.count(stale_a) + links.count(stale_b), 0u);
    EXPECT_TRUE(exists(live.path()));
    EXPECT_FALSE(contains(host_command({"ip", "netns", "list"}), stale_ns));

    EXPECT_TRUE(sweep_stale(kSweepPrefix).namespaces.empty());  // nothing left to do
}

}  // namespace
}  // namespace kiln::netns
