#include "netns/rtnetlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "netns/error.h"

namespace kiln::netns {

namespace {

// Big enough for any dump message (the kernel sizes them to at most 32 KiB).
constexpr size_t kBufferSize = 32768;

struct Reply {
    int error = 0;            // positive errno from an NLMSG_ERROR
    std::string kernel_text;  // the extended ack's message, if the kernel gave one
    std::vector<Link>* links = nullptr;
};

// The extended acknowledgement's text ("Unknown device type"...), which says more than errno.
std::string extended_ack_text(const nlmsghdr* message, const nlmsgerr* error) {
    if (!(message->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
    size_t offset = sizeof(nlmsgerr);
    if (!(message->nlmsg_flags & NLM_F_CAPPED)) offset += error->msg.nlmsg_len - sizeof(nlmsghdr);
    std::string text;
    mnl_attr_parse(
        message, static_cast<unsigned>(offset),
        [](const nlattr* attr, void* data) {
            if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
                *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
            return MNL_CB_OK;
        },
        &text);
    return text;
}

int on_error(const nlmsghdr* message, void* data) {
    auto* reply = static_cast<Reply*>(data);
    if (mnl_nlmsg_get_payload_len(message) < sizeof(nlmsgerr)) {
        reply->error = EBADMSG;
        return MNL_CB_ERROR;
    }
    const auto* error = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(message));
    if (error->error == 0) return MNL_CB_STOP;  // the acknowledgement
    reply->error = -error->error;
    reply->kernel_text = extended_ack_text(message, error);
    return MNL_CB_ERROR;
}

int on_link_info(const nlattr* attr, void* data) {
    auto* link = static_cast<Link*>(data);
    if (mnl_attr_get_type(attr) == IFLA_INFO_KIND && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
        link->kind = mnl_attr_get_str(attr);
    if (mnl_attr_get_type(attr) == IFLA_INFO_SLAVE_DATA) {
        mnl_attr_parse_nested(
            attr,
            [](const nlattr* port, void* d) {
                if (mnl_attr_get_type(port) == IFLA_BRPORT_STATE && mnl_attr_validate(port, MNL_TYPE_U8) == 0)
                    static_cast<Link*>(d)->bridge_port_state = mnl_attr_get_u8(port);
                return MNL_CB_OK;
            },
            link);
    }
    return MNL_CB_OK;
}

int on_link_attribute(const nlattr* attr, void* data) {
    auto* link = static_cast<Link*>(data);
    switch (mnl_attr_get_type(attr)) {
        case IFLA_IFNAME:
            if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) link->name = mnl_attr_get_str(attr);
            break;
        case IFLA_MASTER:
            if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) link->master = static_cast<int>(mnl_attr_get_u32(attr));
            break;
        case IFLA_LINKINFO: mnl_attr_parse_nested(attr, on_link_info, link); break;
        case IFLA_ADDRESS:
            if (mnl_attr_get_payload_len(attr) == link->mac.size())
                std::memcpy(link->mac.data(), mnl_attr_get_payload(attr), link->mac.size());
            break;
        default: break;
    }
    return MNL_CB_OK;
}

int on_link(const nlmsghdr* message, void* data) {
    auto* reply = static_cast<Reply*>(data);
    if (message->nlmsg_type != RTM_NEWLINK || reply->links == nullptr) return MNL_CB_OK;
    if (mnl_nlmsg_get_payload_len(message) < sizeof(ifinfomsg)) return MNL_CB_OK;
    const auto* info = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(message));
    Link link;
    link.index = info->ifi_index;
    link.flags = info->ifi_flags;
    mnl_attr_parse(message, sizeof(ifinfomsg), on_link_attribute, &link);
    reply->links->push_back(std::move(link));
    return MNL_CB_OK;
}

}  // namespace

void check_link_name(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/ :") != std::string::npos)
        throw NetnsError("'" + name + "' is not a usable interface name (1 to " + std::to_string(IFNAMSIZ - 1) +
                         " characters, no '/', ':' or spaces)");
}

Rtnetlink::Rtnetlink(std::string where) : where_(std::move(where)), buffer_(kBufferSize) {
    socket_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (socket_ == nullptr) throw system_error(where_ + ": netlink socket");
    int one = 1;
    // Best effort: extended acks only add the kernel's explanation to error messages.
    mnl_socket_setsockopt(socket_, NETLINK_EXT_ACK, &one, sizeof(one));
    if (mnl_socket_bind(socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
        const int error = errno;
        mnl_socket_close(socket_);
        throw system_error(where_ + ": netlink bind", error);
    }
    port_ = mnl_socket_get_portid(socket_);
}

Rtnetlink::~Rtnetlink() { mnl_socket_close(socket_); }

nlmsghdr* Rtnetlink::begin(uint16_t type, uint16_t flags) {
    nlmsghdr* message = mnl_nlmsg_put_header(buffer_.data());
    message->nlmsg_type = type;
    message->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    message->nlmsg_seq = ++sequence_;
    return message;
}

void Rtnetlink::request(nlmsghdr* message, const std::string& what, std::vector<Link>* links) {
    std::string detail;
    const int error = try_request(message, links, detail);
    if (error != 0) fail(what, error, detail);
}

void Rtnetlink::fail(const std::string& what, int error, const std::string& detail) const {
    std::string text = where_ + ": " + what + ": " + std::strerror(error);
    if (!detail.empty()) text += " (" + detail + ")";
    throw NetnsError(text);
}

int Rtnetlink::try_request(nlmsghdr* message, std::vector<Link>* links, std::string& detail) {
    if (mnl_socket_sendto(socket_, message, message->nlmsg_len) < 0) return errno;
    const uint32_t sequence = message->nlmsg_seq;
    Reply reply;
    reply.links = links;
    // Our handler for NLMSG_ERROR (acks and refusals); libmnl's defaults for the types above it.
    mnl_cb_t controls[NLMSG_ERROR + 1] = {};
    controls[NLMSG_ERROR] = on_error;
    for (;;) {
        const ssize_t n = mnl_socket_recvfrom(socket_, buffer_.data(), buffer_.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        const int result = mnl_cb_run2(buffer_.data(), static_cast<size_t>(n), sequence, port_, on_link, &reply,
                                       controls, NLMSG_ERROR + 1);
        if (result == MNL_CB_STOP) return 0;
        if (result == MNL_CB_ERROR) {
            detail = reply.kernel_text;
            return reply.error != 0 ? reply.error : errno;
        }
    }
}

namespace {
ifinfomsg* put_ifinfo(nlmsghdr* message, int index = 0) {
    auto* info = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ifinfomsg)));
    info->ifi_family = AF_UNSPEC;
    info->ifi_index = index;
    return info;
}
}  // namespace

std::vector<Link> Rtnetlink::links() {
    nlmsghdr* message = begin(RTM_GETLINK, NLM_F_DUMP);
    put_ifinfo(message);
    std::vector<Link> links;
    request(message, "list links", &links);
    return links;
}

std::optional<Link> Rtnetlink::find(const std::string& name) {
    check_link_name(name);
    // One link by name, not a dump: the kernel first brings its carrier state up to date (a
    // carrier change it has not processed yet would report a stale operstate and port state).
    nlmsghdr* message = begin(RTM_GETLINK, NLM_F_ACK);
    put_ifinfo(message);
    mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
    std::vector<Link> links;
    std::string detail;
    const int error = try_request(message, &links, detail);
    if (error == ENODEV) return std::nullopt;
    if (error != 0 || links.size() != 1)
        throw NetnsError(where_ + ": find link " + name + ": " + (error != 0 ? std::strerror(error) : "bad reply"));
    return std::move(links[0]);
}

int Rtnetlink::index_of(const std::string& name) {
    const auto link = find(name);
    if (!link) throw NetnsError(where_ + ": no link named '" + name + "'");
    return link->index;
}

void Rtnetlink::add_bridge(const std::string& name) {
    check_link_name(name);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
    put_ifinfo(message);
    mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
    std::array<uint8_t, 6> mac{};
    if (::getrandom(mac.data(), mac.size(), 0) != static_cast<ssize_t>(mac.size()))
        throw system_error(where_ + ": add bridge " + name + ": getrandom");
    mac[0] = static_cast<uint8_t>((mac[0] & 0xfe) | 0x02);  // unicast, locally administered
    mnl_attr_put(message, IFLA_ADDRESS, mac.size(), mac.data());
    nlattr* info = mnl_attr_nest_start(message, IFLA_LINKINFO);
    mnl_attr_put_strz(message, IFLA_INFO_KIND, "bridge");
    nlattr* data = mnl_attr_nest_start(message, IFLA_INFO_DATA);
    mnl_attr_put_u32(message, IFLA_BR_FORWARD_DELAY, 0);
    mnl_attr_put_u32(message, IFLA_BR_STP_STATE, 0);
    mnl_attr_put_u8(message, IFLA_BR_MCAST_SNOOPING, 0);
    mnl_attr_nest_end(message, data);
    mnl_attr_nest_end(message, info);
    request(message, "add bridge " + name);
}

void Rtnetlink::add_veth(const std::string& name, const std::string& peer, int peer_netns_fd) {
    check_link_name(name);
    check_link_name(peer);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
    put_ifinfo(message);
    mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
    nlattr* info = mnl_attr_nest_start(message, IFLA_LINKINFO);
    mnl_attr_put_strz(message, IFLA_INFO_KIND, "veth");
    nlattr* data = mnl_attr_nest_start(message, IFLA_INFO_DATA);
    // The peer is described by an ifinfomsg of its own followed by its attributes.
    nlattr* peer_info = mnl_attr_nest_start(message, VETH_INFO_PEER);
    put_ifinfo(message);
    mnl_attr_put_strz(message, IFLA_IFNAME, peer.c_str());
    mnl_attr_put_u32(message, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
    mnl_attr_nest_end(message, peer_info);
    mnl_attr_nest_end(message, data);
    mnl_attr_nest_end(message, info);
    request(message, "add veth " + name + " (peer " + peer + ")");
}

void Rtnetlink::set_up(const std::string& name) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_ACK);
    ifinfomsg* info = put_ifinfo(message, index);
    info->ifi_flags = IFF_UP;
    info->ifi_change = IFF_UP;
    request(message, "set " + name + " up");
}

void Rtnetlink::set_master(const std::string& name, const std::string& master) {
    const int index = index_of(name);
    const int master_index = index_of(master);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_ACK);
    put_ifinfo(message, index);
    mnl_attr_put_u32(message, IFLA_MASTER, static_cast<uint32_t>(master_index));
    request(message, "attach " + name + " to " + master);
}

void Rtnetlink::claim(int index, const std::string& name, int master_index) {
    check_link_name(name);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_ACK);
    ifinfomsg* info = put_ifinfo(message, index);
    info->ifi_flags = IFF_UP;
    info->ifi_change = IFF_UP;
    mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
    mnl_attr_put_u32(message, IFLA_MASTER, static_cast<uint32_t>(master_index));
    request(message, "claim link " + std::to_string(index) + " as " + name);
}

void Rtnetlink::add_address(const std::string& name, const Ipv4Prefix& prefix) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
    auto* address = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ifaddrmsg)));
    address->ifa_family = AF_INET;
    address->ifa_prefixlen = prefix.length;
    address->ifa_scope = RT_SCOPE_UNIVERSE;
    address->ifa_index = static_cast<uint32_t>(index);
    const uint32_t local = htonl(prefix.address);
    mnl_attr_put_u32(message, IFA_LOCAL, local);
    mnl_attr_put_u32(message, IFA_ADDRESS, local);
    if (prefix.length < 31) mnl_attr_put_u32(message, IFA_BROADCAST, htonl(prefix.broadcast()));
    request(message, "add address " + prefix.to_string() + " to " + name);
}

void Rtnetlink::delete_link(const std::string& name) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_DELLINK, NLM_F_ACK);
    put_ifinfo(message, index);
    request(message, "delete link " + name);
}

namespace {
void put_neighbour(nlmsghdr* message, int index, uint32_t ip, uint8_t state) {
    auto* neighbour = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ndmsg)));
    neighbour->ndm_family = AF_INET;
    neighbour->ndm_ifindex = index;
    neighbour->ndm_state = state;
    mnl_attr_put_u32(message, NDA_DST, htonl(ip));
}
}  // namespace

void Rtnetlink::set_neighbour(const std::string& name, uint32_t ip, const std::array<uint8_t, 6>& mac) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK);
    put_neighbour(message, index, ip, NUD_PERMANENT);
    mnl_attr_put(message, NDA_LLADDR, mac.size(), mac.data());
    request(message, "permanent neighbour on " + name);
}

bool Rtnetlink::delete_neighbour(const std::string& name, uint32_t ip) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_DELNEIGH, NLM_F_ACK);
    put_neighbour(message, index, ip, 0);
    std::string detail;
    const int error = try_request(message, nullptr, detail);
    if (error == ENOENT) return false;
    if (error != 0) fail("delete a neighbour on " + name, error, detail);
    return true;
}

void Rtnetlink::set_group(const std::string& name, uint32_t group) {
    const int index = index_of(name);
    nlmsghdr* message = begin(RTM_NEWLINK, NLM_F_ACK);
    put_ifinfo(message, index);
    mnl_attr_put_u32(message, IFLA_GROUP, group);
    request(message, "put " + name + " in group " + std::to_string(group));
}

bool Rtnetlink::delete_group(uint32_t group) {
    nlmsghdr* message = begin(RTM_DELLINK, NLM_F_ACK);
    put_ifinfo(message, 0);
    mnl_attr_put_u32(message, IFLA_GROUP, group);
    std::string detail;
    const int error = try_request(message, nullptr, detail);
    if (error == ENODEV) return false;
    if (error != 0) fail("delete the links of group " + std::to_string(group), error, detail);
    return true;
}

}  // namespace kiln::netns
