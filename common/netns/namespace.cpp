#include "netns/namespace.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_bridge.h>
#include <linux/if_tun.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "netns/error.h"

namespace kiln::netns {

namespace {

constexpr const char* kRunDir = "/run/netns";

// Runs `fn` on a new thread and waits for it. Entering a network namespace (unshare, setns) is
// per thread, so the caller's thread never changes namespace.
void on_new_thread(const std::function<void()>& fn) {
    std::exception_ptr failure;
    std::thread thread([&] {
        try {
            fn();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    thread.join();
    if (failure) std::rethrow_exception(failure);
}

// /run/netns as `ip netns add` leaves it: a mount point with shared propagation, so that a
// namespace unmounted here is unmounted in every mount namespace and can be freed.
void prepare_run_dir() {
    static std::once_flag done;
    std::call_once(done, [] {
        if (::mkdir(kRunDir, 0755) != 0 && errno != EEXIST) throw system_error(kRunDir);
        bool made_mount = false;
        while (::mount("", kRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
            if (errno != EINVAL || made_mount) throw system_error(std::string(kRunDir) + ": mount");
            // Not a mount point yet: bind it onto itself, then make that shared.
            if (::mount(kRunDir, kRunDir, "none", MS_BIND | MS_REC, nullptr) != 0)
                throw system_error(std::string(kRunDir) + ": bind mount");
            made_mount = true;
        }
    });
}

void check_namespace_name(const std::string& name) {
    if (name.empty() || name == "." || name == ".." || name.size() > 200 || name.find('/') != std::string::npos)
        throw NetnsError("'" + name + "' is not a usable network namespace name");
}

}  // namespace

Namespace::Namespace(std::string name) : name_(std::move(name)) {
    check_namespace_name(name_);
    path_ = std::string(kRunDir) + "/" + name_;
    prepare_run_dir();
    create();
}

Namespace::Namespace(std::string name, Persistent) : name_(std::move(name)), persistent_(true) {
    check_namespace_name(name_);
    path_ = std::string(kRunDir) + "/" + name_;
    prepare_run_dir();
    struct statfs fs {};
    // A namespace file is a mount of nsfs; a bare file (a crash between create and mount) is not.
    if (::statfs(path_.c_str(), &fs) == 0 && fs.f_type == NSFS_MAGIC) {
        open_existing();
        return;
    }
    ::unlink(path_.c_str());
    create();
}

void Namespace::open_existing() {
    fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) throw system_error(where() + ": open " + path_);
    on_new_thread([this] {
        if (::setns(fd_.get(), CLONE_NEWNET) != 0) throw system_error(where() + ": setns");
        netlink_ = std::make_unique<Rtnetlink>(where());
    });
}

void Namespace::create() {
    created_ = true;
    {
        UniqueFd file(::open(path_.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
        if (!file.valid()) {
            if (errno == EEXIST) throw NetnsError(where() + ": exists already (" + path_ + ")");
            throw system_error(where() + ": create " + path_);
        }
    }
    try {
        on_new_thread([this] {
            if (::unshare(CLONE_NEWNET) != 0) throw system_error(where() + ": unshare");
            // /proc/self would name the process's (main thread's) namespace, not this thread's.
            if (::mount("/proc/thread-self/ns/net", path_.c_str(), "none", MS_BIND, nullptr) != 0)
                throw system_error(where() + ": bind mount on " + path_);
            netlink_ = std::make_unique<Rtnetlink>(where());
        });
        fd_.reset(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd_.valid()) throw system_error(where() + ": open " + path_);
        netlink_->set_up("lo");
    } catch (...) {
        remove();
        throw;
    }
}

Namespace::~Namespace() {
    if (persistent_) return;
    remove();
}

void Namespace::remove() noexcept {
    netlink_.reset();
    fd_.reset();
    // MNT_DETACH: a process that has the file open (ip netns exec in progress) does not stop
    // the deletion; EINVAL means it was never mounted (construction failed before the mount).
    if (::umount2(path_.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
        std::fprintf(stderr, "%s: unmount %s: %s\n", where().c_str(), path_.c_str(), std::strerror(errno));
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
        std::fprintf(stderr, "%s: remove %s: %s\n", where().c_str(), path_.c_str(), std::strerror(errno));
}

void Namespace::run_function(const std::function<void()>& fn) const {
    on_new_thread([&] {
        if (::setns(fd_.get(), CLONE_NEWNET) != 0) throw system_error(where() + ": setns");
        fn();
    });
}

void Namespace::add_bridge(const std::string& name, std::optional<Ipv4Prefix> address) {
    netlink_->add_bridge(name);
    if (address) netlink_->add_address(name, *address);
    netlink_->set_up(name);
}

void Namespace::make_tap(const std::string& name) {
    check_link_name(name);
    // TUNSETIFF on a name that exists attaches to it instead of failing: refuse explicitly.
    if (netlink_->find(name)) throw NetnsError(where() + ": add tap " + name + ": exists already");
    run([&] {
        // The tap is created in the namespace of the thread that asks for it.
        UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        if (!tun.valid()) throw system_error(where() + ": add tap " + name + ": /dev/net/tun");
        ifreq request{};
        std::memcpy(request.ifr_name, name.data(), name.size());
        request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        if (::ioctl(tun.get(), TUNSETIFF, &request) != 0)
            throw system_error(where() + ": add tap " + name + ": TUNSETIFF");
        // Persistent: it outlives this descriptor, until the namespace goes.
        if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0)
            throw system_error(where() + ": add tap " + name + ": TUNSETPERSIST");
    });
}

void Namespace::add_tap(const std::string& name, const std::string& bridge) {
    make_tap(name);
    if (!bridge.empty()) netlink_->set_master(name, bridge);
    netlink_->set_up(name);
    // Closing the descriptor above took the carrier down, and the kernel may put off processing
    // that for up to a second. Were it still pending when kiln-vmm attaches, the carrier-up would
    // wait as long, and the tap would drop the guest's first frames meanwhile. Looking the link up
    // makes the kernel process it now.
    netlink_->find(name);
}

int Namespace::add_spare_tap(const std::string& name) {
    make_tap(name);
    return netlink_->index_of(name);  // and the carrier change processed, as above
}

void Namespace::add_address(const std::string& link, const Ipv4Prefix& prefix) { netlink_->add_address(link, prefix); }

void Namespace::set_up(const std::string& link) { netlink_->set_up(link); }

void Namespace::delete_link(const std::string& name) { netlink_->delete_link(name); }

std::vector<Link> Namespace::links() { return netlink_->links(); }

std::optional<Link> Namespace::find_link(const std::string& name) { return netlink_->find(name); }

void Namespace::wait_forwarding(const std::string& link, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto found = netlink_->find(link);
        if (!found) throw NetnsError(where() + ": no link named '" + link + "'");
        // IFF_RUNNING: the carrier change has been processed (the port state may be older).
        bool ready = found->bridge_port_state == BR_STATE_FORWARDING && (found->flags & IFF_RUNNING);
        // The bridge's own carrier comes up when its first port forwards, in later deferred work;
        // until then what the bridge itself sends (an ARP reply from the gateway) is dropped.
        std::optional<Link> bridge;
        if (ready && found->master != 0) {
            for (auto& l : netlink_->links())
                if (l.index == found->master) bridge = std::move(l);
            ready = bridge && (bridge->flags & IFF_RUNNING);
        }
        if (ready) return;
        if (std::chrono::steady_clock::now() > deadline)
            throw NetnsError(where() + ": " + link + " is not forwarding after " + std::to_string(timeout.count()) +
                             " ms (port state " + std::to_string(found->bridge_port_state) +
                             (bridge ? ", its bridge not running" : "") + ")");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

Process Namespace::spawn(const std::vector<std::string>& argv, const SpawnOptions& options) const {
    return spawn_process(fd_.get(), argv, options, where());
}

CommandResult Namespace::run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) const {
    return run_process(fd_.get(), argv, timeout, where());
}

void add_veth(const VethEnd& a, const VethEnd& b) {
    a.ns.netlink().add_veth(a.name, b.name, b.ns.fd());
    for (const VethEnd* end : {&a, &b}) {
        if (end->address) end->ns.add_address(end->name, *end->address);
        end->ns.set_up(end->name);
    }
}

}  // namespace kiln::netns
