// kilnd's private network: one network namespace per state directory, holding bridges (the
// guests' gateway and name server) and one persistent tap per instance. kiln-vmm runs inside the
// namespace and attaches to its instance's tap; nothing in the namespace routes to the host, so
// guests reach each other and nothing else. The namespace outlives kilnd, as the guests do: a
// kilnd started again reopens it.
//
// A Linux bridge takes at most 1,024 ports (BR_MAX_PORTS), and the /16 holds 65,534 instances.
// So the taps are spread over bridges by address, a thousand addresses each, and every further
// bridge is a port of kbr0 through a veth pair: still one Ethernet segment, one subnet, one
// gateway, so guests on different bridges reach each other as before. kbr0 holds its own
// thousand taps and at most 65 trunks.
//
//   netns kiln-<hash of the state dir>
//     kbr0   10.77.0.1/16: gateway, and DNS for <name>.internal (DnsServer)
//     kbrN   made with the first instance of 10.77.0.0 + N*1000 ..+999; kbrN-up (on kbr0) and
//            kbrN-dn (on kbrN) the veth pair joining it to kbr0
//     k<uuid prefix>: one tap per instance, a port of its address's bridge; the instance is 10.77.x.y
//     ks<N>  spare taps, made ahead (down, on no bridge): attaching an instance renames one, puts
//            it on its bridge and raises it in one netlink message, instead of making a tap
//            (a thread entering the namespace, two ioctls, five requests) on the start's path
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "netns/namespace.h"
#include "network/tap_reaper.h"

namespace kiln::network {

struct Endpoint {
    std::string ip;   // "10.77.0.2"
    std::string mac;  // "02:4b:00:00:00:02", derived from the address
    std::string tap;  // its tap's name in the namespace
};

class PrivateNetwork {
  public:
    explicit PrivateNetwork(const std::string& state_dir);
    ~PrivateNetwork();  // deletes the taps still queued for deletion

    netns::Namespace& ns() { return *ns_; }
    uint32_t gateway() const { return gateway_; }  // host byte order
    std::string gateway_string() const;
    int prefix_length() const { return 16; }

    // The lowest free address, given those taken.
    std::string allocate(const std::vector<std::string>& taken) const;
    // The endpoint of the instance with `uuid` and address `ip`.
    static Endpoint endpoint(const std::string& uuid, const std::string& ip);
    // Creates the endpoint's tap on its bridge (and the bridge, the first time), unless it exists,
    // and a permanent neighbour entry for it on the gateway's bridge.
    void attach(const Endpoint& endpoint);
    // The MAC of the instance at `address` (host byte order): 02:4b and the address's 4 bytes.
    static std::array<uint8_t, 6> mac_of(uint32_t address);
    // The bridge the endpoint with address `ip` is a port of: "kbr0", "kbr1"...
    static std::string bridge_for(const std::string& ip);
    // Makes spare taps until there are kSpareTaps, once the last one taken is kRefillAfter old:
    // kilnd's reconciler calls it (when next_spare_refill() says), under kilnd's lock, so not
    // while the start that took one runs, whose end and deletion would wait for it. Those a kilnd
    // before left are found at construction and used.
    void refill_spare_taps();
    std::optional<std::chrono::steady_clock::time_point> next_spare_refill() const;
    size_t spare_taps() const { return spare_taps_.size(); }
    static constexpr size_t kSpareTaps = 2;
    static constexpr auto kRefillAfter = std::chrono::milliseconds(20);
    static constexpr const char* kSpareTapPrefix = "ks";
    // Removes the endpoint's neighbour entry, and its tap (the instance is gone): soon, on the
    // reaper's thread.
    void detach(const Endpoint& endpoint);
    // Returns once every tap detached so far is gone.
    void wait_detached() { reaper_->wait_idle(); }
    // Deletes the namespace with everything in it (kilnd ends with no guest left to serve).
    void destroy() {
        reaper_->wait_idle();
        ns_->destroy();
    }
    // The guest kernel's network parameters: kiln.ip=... kiln.gw=... kiln.dns=...
    std::string kernel_parameters(const Endpoint& endpoint) const;

  private:
    void disable_ipv6();
    static void raise_neighbour_limits();
    // Makes bridge `name` and its trunk to kbr0, or finishes what a kilnd ended midway began.
    void add_trunked_bridge(const std::string& name);
    // Gives a spare tap the endpoint's name on `bridge`, up; false if there is none to give.
    bool claim_spare_tap(const std::string& tap, const std::string& bridge);

    std::unique_ptr<netns::Namespace> ns_;
    uint32_t gateway_;
    std::unique_ptr<TapReaper> reaper_;  // after ns_: gone before it
    std::set<std::string> bridges_;      // those known to be there, trunk and all
    struct SpareTap {
        std::string name;
        int index;
    };
    std::vector<SpareTap> spare_taps_;
    uint64_t spare_taps_made_ = 0;  // names the next: ks<N>
    std::chrono::steady_clock::time_point last_claim_{};
};

// "10.77.0.2" -> host byte order; throws NetnsError for anything else.
uint32_t parse_ipv4(const std::string& text);

// "kiln-" and eight hex digits of a hash of the state directory: stable across kilnd's runs.
std::string namespace_name(const std::string& state_dir);

}  // namespace kiln::network
