// A route netlink socket and the few requests the library makes. A netlink socket acts in the
// network namespace it was created in, whichever thread later uses it: Namespace creates one on a
// thread inside its namespace and keeps it, so no later call has to enter the namespace again.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "netns/ipv4.h"

struct mnl_socket;
struct nlmsghdr;

namespace kiln::netns {

struct Link {
    int index = 0;
    std::string name;
    std::string kind;    // "bridge", "veth", "tun", ""; from IFLA_INFO_KIND
    unsigned flags = 0;  // IFF_UP...
    int master = 0;      // index of the bridge it is attached to, 0 if none
    // A bridge port's state (BR_STATE_FORWARDING...), -1 if it is no bridge port. A port starts
    // forwarding a moment after its carrier comes up (for a tap: when someone attaches to it).
    int bridge_port_state = -1;
    std::array<uint8_t, 6> mac{};  // IFLA_ADDRESS; zero for links without one
};

class Rtnetlink {
  public:
    // Opens a socket in the calling thread's network namespace. `where` names that namespace in
    // error messages ("netns kt-42-a").
    explicit Rtnetlink(std::string where);
    ~Rtnetlink();
    Rtnetlink(const Rtnetlink&) = delete;
    Rtnetlink& operator=(const Rtnetlink&) = delete;

    std::vector<Link> links();
    std::optional<Link> find(const std::string& name);
    int index_of(const std::string& name);  // throws if there is no such link

    // A bridge that forwards at once (forward delay 0, no STP): a guest is reachable as soon as
    // its tap is up. No multicast snooping: multicast floods to every port, and the bridge sends
    // no IGMP reports of its own (frames the guests did not ask for, which would also shift a
    // seeded fault sequence).
    // Its MAC is chosen here (random, locally administered) and set, not inherited: a bridge
    // whose address the kernel picks takes the lowest of its ports' and changes it whenever a
    // port with a lower one joins, and every guest that cached the old one in its ARP table
    // then answers into the void until that entry expires. Restoring a snapshot on a new tap
    // did exactly that.
    void add_bridge(const std::string& name);
    // A veth pair: `name` here, `peer` in the namespace `peer_netns_fd` refers to.
    void add_veth(const std::string& name, const std::string& peer, int peer_netns_fd);
    void set_up(const std::string& name);
    void set_master(const std::string& name, const std::string& master);
    // Link `index`, which is down, renamed `name`, made a port of link `master_index` and brought
    // up, in one message (the kernel renames before it attaches and raises the link).
    void claim(int index, const std::string& name, int master_index);
    void add_address(const std::string& name, const Ipv4Prefix& prefix);
    void delete_link(const std::string& name);
    // A permanent neighbour entry on link `name`: `ip` (host byte order) is at `mac`, and no ARP
    // request is ever broadcast for it. Replaces an entry there was.
    void set_neighbour(const std::string& name, uint32_t ip, const std::array<uint8_t, 6>& mac);
    // Removes the entry for `ip` on `name`; false if there was none.
    bool delete_neighbour(const std::string& name, uint32_t ip);
    // Links in a group are deleted together, in one request: Linux unregisters them as a batch,
    // with one wait for readers (an RCU grace period) for all, where deleting them one by one
    // waited once per link (~15 ms each here).
    void set_group(const std::string& name, uint32_t group);
    // Deletes every link of `group`; false if there was none.
    bool delete_group(uint32_t group);

  private:
    // Sends a request built in `buffer_` and waits for its acknowledgement; throws NetnsError
    // "<where>: <what>: <reason>" if the kernel refuses it.
    void request(nlmsghdr* message, const std::string& what, std::vector<Link>* links = nullptr);
    // The same, returning the errno (0: acknowledged) and the kernel's explanation.
    int try_request(nlmsghdr* message, std::vector<Link>* links, std::string& detail);
    [[noreturn]] void fail(const std::string& what, int error, const std::string& detail) const;
    nlmsghdr* begin(uint16_t type, uint16_t flags);

    std::string where_;
    mnl_socket* socket_ = nullptr;
    uint32_t port_ = 0;
    uint32_t sequence_ = 0;
    std::vector<char> buffer_;
};

// Interface names are at most 15 bytes (IFNAMSIZ - 1); throws NetnsError naming `name` otherwise.
void check_link_name(const std::string& name);

}  // namespace kiln::netns
