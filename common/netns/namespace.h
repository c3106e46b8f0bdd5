// Network namespaces for kiln-vmm's guests, tests and benchmarks.
//
// Where the taps live. kiln-vmm attaches to its tap by name (TUNSETIFF on /dev/net/tun), and the
// kernel looks that name up in the network namespace of the calling process. So a guest's whole
// network is inside one namespace: the bridge, its address (the guest's gateway), the taps, and
// kiln-vmm itself, which is started in the namespace (Namespace::spawn, or `ip netns exec NAME`).
// The alternative, taps and bridge in the host's namespace with kiln-vmm outside, would put every
// test's links and addresses on the host, where names and subnets collide between concurrent runs
// and a crash leaves them behind. Inside a namespace nothing reaches the host: deleting the
// namespace deletes its bridge, taps and veths with it.
//
//     Namespace ns(owned_name("kt", "net"));              // /run/netns/kt-4242-net, lo up
//     ns.add_bridge("br0", Ipv4Prefix::parse("10.77.0.1/24"));
//     ns.add_tap("tap0", "br0");
//     auto vmm = ns.spawn({"kiln-vmm", "--net", "tap=tap0", ...});
//     ns.run_command({"curl", "http://10.77.0.5/"});      // reaches the guest
//
// Benchmarks connect two namespaces with a veth pair (add_veth) so a host process in one reaches
// the other over a real link.
//
// The namespace is a bind mount of its nsfs file at /run/netns/NAME, exactly as `ip netns add`
// makes it, so `ip netns exec NAME`, `ip -n NAME` and the daemon's tools all see it. Names should
// carry their owner (owned_name) so that sweep_stale() can remove what a crashed process left.
//
// A Namespace is not thread-safe; use one from one thread at a time.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "host/unique_fd.h"
#include "netns/ipv4.h"
#include "netns/process.h"
#include "netns/rtnetlink.h"

namespace kiln::netns {

class Namespace {
  public:
    // Creates the namespace /run/netns/NAME (like `ip netns add NAME`) with lo up. Throws
    // NetnsError if it exists already or cannot be made (not root...).
    explicit Namespace(std::string name);
    // A daemon's namespace, which outlives the daemon (its guests keep running): opens
    // /run/netns/NAME if a previous run left it, else creates it; never deleted on destruction.
    // created() says which it was.
    struct Persistent {};
    Namespace(std::string name, Persistent);
    bool created() const { return created_; }
    // Deletes a Persistent namespace now (a scoped one goes with its destruction).
    void destroy() noexcept { remove(); }
    // Deletes it (unless Persistent) (like `ip netns delete`): the bind mount and the file go; the kernel frees the
    // namespace, and every link in it, once the last process inside has exited.
    ~Namespace();
    Namespace(const Namespace&) = delete;
    Namespace& operator=(const Namespace&) = delete;

    const std::string& name() const { return name_; }
    const std::string& path() const { return path_; }
    // An open descriptor of the namespace, for setns() or IFLA_NET_NS_FD.
    int fd() const { return fd_.get(); }

    // Links inside the namespace. Each is brought up. Errors name the namespace and the link.
    // A bridge with an optional address (the guests' gateway), forwarding at once (no STP delay).
    void add_bridge(const std::string& name, std::optional<Ipv4Prefix> address = std::nullopt);
    // A persistent tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as kiln-vmm opens it), attached to
    // `bridge` unless that is empty. kiln-vmm started in this namespace opens it by name.
    void add_tap(const std::string& name, const std::string& bridge = {});
    // The same tap left down and on no bridge, made ahead of need: Rtnetlink::claim later names,
    // attaches and raises it in one message. Returns its index.
    int add_spare_tap(const std::string& name);
    void add_address(const std::string& link, const Ipv4Prefix& prefix);
    void set_up(const std::string& link);
    void delete_link(const std::string& name);
    std::vector<Link> links();
    std::optional<Link> find_link(const std::string& name);
    // Waits until the bridge port `link` forwards and its bridge runs. A tap's port forwards a
    // moment (well under a millisecond) after something attaches to the tap, and a bridge's
    // carrier comes up a moment after its first port forwards; what comes before is dropped.
    // So: spawn kiln-vmm, then wait_forwarding(tap) before expecting the guest to answer (this
    // also waits until kiln-vmm has attached). Throws on timeout.
    void wait_forwarding(const std::string& link, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // The namespace's own route netlink socket, for anything the helpers above do not cover.
    Rtnetlink& netlink() { return *netlink_; }

    // Runs `fn` on a thread that has entered the namespace and returns its result (or rethrows
    // its exception). Sockets and taps it opens stay in the namespace after it returns.
    template <typename F>
    std::invoke_result_t<F&> run(F&& fn) const {
        using Result = std::invoke_result_t<F&>;
        if constexpr (std::is_void_v<Result>) {
            run_function([&] { fn(); });
        } else {
            std::optional<Result> result;
            run_function([&] { result.emplace(fn()); });
            return std::move(*result);
        }
    }

    // Starts a command inside the namespace (argv[0] is searched in PATH).
    Process spawn(const std::vector<std::string>& argv, const SpawnOptions& options = {}) const;
    // Runs a command inside the namespace to completion and captures its output.
    CommandResult run_command(const std::vector<std::string>& argv,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  private:
    void run_function(const std::function<void()>& fn) const;
    void make_tap(const std::string& name);  // persistent, down, on no bridge
    void remove() noexcept;
    std::string where() const { return "netns " + name_; }

    void create();
    void open_existing();

    std::string name_;
    std::string path_;
    bool persistent_ = false;
    bool created_ = false;
    UniqueFd fd_;
    std::unique_ptr<Rtnetlink> netlink_;  // created inside the namespace
};

// One end of a veth pair: its namespace, its name there, and an optional address.
struct VethEnd {
    Namespace& ns;
    std::string name;
    std::optional<Ipv4Prefix> address = std::nullopt;
};

// A veth pair between two namespaces, both ends up.
void add_veth(const VethEnd& a, const VethEnd& b);

}  // namespace kiln::netns
