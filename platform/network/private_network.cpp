#include "network/private_network.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "netns/error.h"
#include "network/dns_message.h"

namespace kiln::network {

namespace {

constexpr const char* kBridge = "kbr0";
constexpr uint32_t kGateway = 0x0a4d0001;  // 10.77.0.1
constexpr uint32_t kNetmask = 0xffff0000;
constexpr uint32_t kAddressesPerBridge = 1000;  // and its trunk: under the 1,024 ports a bridge takes

std::string ip_string(uint32_t address) {
    in_addr in{htonl(address)};
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &in, text, sizeof(text));
    return text;
}

}  // namespace

uint32_t parse_ipv4(const std::string& text) {
    in_addr in{};
    if (::inet_pton(AF_INET, text.c_str(), &in) != 1) throw netns::NetnsError("not an IPv4 address: " + text);
    return ntohl(in.s_addr);
}

std::string namespace_name(const std::string& state_dir) {
    uint32_t hash = 2166136261u;  // FNV-1a: stable across builds, unlike std::hash
    for (const char c : state_dir) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
    char name[16];
    std::snprintf(name, sizeof(name), "kiln-%08x", hash);
    return name;
}

PrivateNetwork::PrivateNetwork(const std::string& state_dir)
    : ns_(std::make_unique<netns::Namespace>(namespace_name(state_dir), netns::Namespace::Persistent{})),
      gateway_(kGateway) {
    disable_ipv6();
    raise_neighbour_limits();
    if (!ns_->find_link(kBridge)) ns_->add_bridge(kBridge, netns::Ipv4Prefix{kGateway, 16});
    bridges_.insert(kBridge);
    reaper_ = std::make_unique<TapReaper>(*ns_);
    for (const auto& link : ns_->netlink().links()) {
        if (link.kind != "tun" || !link.name.starts_with(kSpareTapPrefix) || (link.flags & IFF_UP) || link.master)
            continue;
        spare_taps_.push_back({link.name, link.index});
        const uint64_t number = std::strtoull(link.name.c_str() + std::strlen(kSpareTapPrefix), nullptr, 10);
        spare_taps_made_ = std::max(spare_taps_made_, number + 1);
    }
    // For people and tests: `ip netns exec $(cat STATE/netns) ...` reaches the guests.
    std::ofstream(state_dir + "/netns") << ns_->name() << "\n";
}

// The network is IPv4 (the guests' stack is). With IPv6 on, every tap that comes up gets a
// link-local address and its routes, and sends router solicitations and MLD reports that each
// bridge floods to all its ports: at thousands of taps, each carrier change walked the IPv6
// routing table (fib6_ifdown) and flooded a thousand ports. `all` turns it off on what exists,
// `default` on what is made later. /proc/sys/net is the namespace of whoever opens it.
void PrivateNetwork::disable_ipv6() {
    ns_->run([] {
        for (const char* scope : {"all", "default"}) {
            const std::string path = std::string("/proc/sys/net/ipv6/conf/") + scope + "/disable_ipv6";
            std::ofstream(path) << "1\n";  // no such file: a kernel without IPv6, nothing to do
        }
    });
}

// The balancer (10.77.0.1) holds an ARP entry for every instance it reaches, and Linux keeps one
// neighbour table for all namespaces, capped by the host's gc_thresh3 (1,024 by default). Past it
// the kernel refuses new entries ("neighbor table overflow"): the next instance's SYN went
// nowhere until the periodic collection freed some, 30 s later, at every 1,024th service of a
// density run. The limits are host-wide and only the host's namespace may set them, so kilnd
// raises them (never lowers them) to hold the whole /16 twice over.
void PrivateNetwork::raise_neighbour_limits() {
    constexpr std::pair<const char*, long> kWanted[] = {
        {"gc_thresh3", 131072},  // the hard cap: the first raised, so the others never exceed it
        {"gc_thresh2", 65536},
        {"gc_thresh1", 8192},
    };
    for (const auto& [name, wanted] : kWanted) {
        const std::string path = std::string("/proc/sys/net/ipv4/neigh/default/") + name;
        long now = 0;
        if (!(std::ifstream(path) >> now) || now >= wanted) continue;
        if (std::ofstream(path) << wanted << "\n")
            std::fprintf(stderr, "kilnd: raised the host's net.ipv4.neigh.default.%s from %ld to %ld\n", name, now,
                         wanted);
        else
            std::fprintf(stderr,
                         "kilnd: cannot raise net.ipv4.neigh.default.%s (%ld): past that many instances, "
                         "the balancer cannot reach new ones\n",
                         name, now);
    }
}

std::string PrivateNetwork::gateway_string() const { return ip_string(gateway_); }

std::string PrivateNetwork::allocate(const std::vector<std::string>& taken) const {
    std::set<uint32_t> used;
    for (const auto& ip : taken)
        if (!ip.empty()) used.insert(parse_ipv4(ip));
    const uint32_t network = gateway_ & kNetmask;
    for (uint32_t host = 2; host < ~kNetmask; ++host) {
        const uint32_t address = network | host;
        if ((host & 0xff) == 0 || (host & 0xff) == 0xff) continue;  // keep clear of .0 and .255
        if (!used.count(address)) return ip_string(address);
    }
    throw netns::NetnsError("the private network " + ip_string(network) + "/16 is full");
}

std::array<uint8_t, 6> PrivateNetwork::mac_of(uint32_t address) {
    return {0x02,
            0x4b,
            static_cast<uint8_t>(address >> 24),
            static_cast<uint8_t>(address >> 16),
            static_cast<uint8_t>(address >> 8),
            static_cast<uint8_t>(address)};
}

Endpoint PrivateNetwork::endpoint(const std::string& uuid, const std::string& ip) {
    const auto bytes = mac_of(parse_ipv4(ip));
    char mac[18];
    std::snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3], bytes[4],
                  bytes[5]);
    std::string tap = "k";
    tap.append(uuid, 0, 13);  // at most 14 bytes: interface names hold 15
    tap.erase(std::remove(tap.begin(), tap.end(), '-'), tap.end());
    return {ip, mac, tap};
}

std::string PrivateNetwork::bridge_for(const std::string& ip) {
    return "kbr" + std::to_string((parse_ipv4(ip) & ~kNetmask) / kAddressesPerBridge);
}

void PrivateNetwork::attach(const Endpoint& endpoint) {
    const std::string bridge = bridge_for(endpoint.ip);
    if (!bridges_.count(bridge)) add_trunked_bridge(bridge);
    if (!ns_->find_link(endpoint.tap) && !claim_spare_tap(endpoint.tap, bridge)) ns_->add_tap(endpoint.tap, bridge);
    // The gateway (the balancer, the name server) knows the instance's MAC without asking: an
    // ARP request is a broadcast, which every instance on the segment wakes to read, and which
    // at a thousand running instances cost ~60 ms of their time per new neighbour.
    const uint32_t address = parse_ipv4(endpoint.ip);
    ns_->netlink().set_neighbour(kBridge, address, mac_of(address));
}

bool PrivateNetwork::claim_spare_tap(const std::string& tap, const std::string& bridge) {
    while (!spare_taps_.empty()) {
        const SpareTap spare = std::move(spare_taps_.back());
        spare_taps_.pop_back();
        try {
            ns_->netlink().claim(spare.index, tap, ns_->netlink().index_of(bridge));
            last_claim_ = std::chrono::steady_clock::now();
            return true;
        } catch (const netns::NetnsError& e) {
            // Deleted or changed by someone else meanwhile: the next, or a tap made now.
            std::fprintf(stderr, "kilnd: spare tap %s: %s\n", spare.name.c_str(), e.what());
        }
    }
    return false;
}

std::optional<std::chrono::steady_clock::time_point> PrivateNetwork::next_spare_refill() const {
    if (spare_taps_.size() >= kSpareTaps) return std::nullopt;
    return last_claim_ + kRefillAfter;
}

void PrivateNetwork::refill_spare_taps() {
    if (std::chrono::steady_clock::now() - last_claim_ < kRefillAfter) return;
    while (spare_taps_.size() < kSpareTaps) {
        const std::string name = kSpareTapPrefix + std::to_string(spare_taps_made_++);
        spare_taps_.push_back({name, ns_->add_spare_tap(name)});
    }
}

void PrivateNetwork::add_trunked_bridge(const std::string& name) {
    if (!ns_->find_link(name)) ns_->add_bridge(name);
    const std::string up = name + "-up", down = name + "-dn";
    // Deleting either end of a veth pair deletes both: one found means both are there.
    if (!ns_->find_link(up)) netns::add_veth({*ns_, up}, {*ns_, down});
    auto& netlink = ns_->netlink();
    const int trunk_master = netlink.index_of(kBridge), bridge = netlink.index_of(name);
    if (ns_->find_link(up)->master != trunk_master) netlink.set_master(up, kBridge);
    if (ns_->find_link(down)->master != bridge) netlink.set_master(down, name);
    bridges_.insert(name);
}

PrivateNetwork::~PrivateNetwork() = default;

// The neighbour entry goes at once, on this thread: the address is free for the next instance,
// whose attach must not find it taken away afterwards by the reaper.
void PrivateNetwork::detach(const Endpoint& endpoint) {
    ns_->netlink().delete_neighbour(kBridge, parse_ipv4(endpoint.ip));
    reaper_->reap(endpoint.tap);
}

std::string PrivateNetwork::kernel_parameters(const Endpoint& endpoint) const {
    std::string text;
    text.append("kiln.ip=").append(endpoint.ip).append("/16 kiln.gw=").append(gateway_string());
    text.append(" kiln.dns=").append(gateway_string()).append(" kiln.search=").append(kDomain);
    return text;
}

}  // namespace kiln::network
