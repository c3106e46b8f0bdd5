#include "net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "host/unique_fd.h"
#include "kiln/virtio.h"
#include "util/error.h"

namespace kiln::vmm {

Tap Tap::open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) throw VmmError("--net: bad tap name '" + name + "'");
    Tap tap;
    tap.name_ = name;
    tap.fd_.reset(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!tap.fd_.valid()) throw system_error("--net tap=" + name + ": /dev/net/tun");
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(tap.fd_.get(), TUNSETIFF, &ifr) != 0) throw system_error("--net tap=" + name + ": TUNSETIFF");
    int header = sizeof(abi::virtio::NetHeader);
    if (::ioctl(tap.fd_.get(), TUNSETVNETHDRSZ, &header) != 0)
        throw system_error("--net tap=" + name + ": TUNSETVNETHDRSZ");
    return tap;
}

Tap Tap::adopt(UniqueFd fd, std::string name) {
    Tap tap;
    tap.fd_ = std::move(fd);
    tap.name_ = std::move(name);
    tap.is_tap_ = false;
    return tap;
}

void Tap::set_offload(unsigned flags) {
    if (!is_tap_) return;
    if (::ioctl(fd_.get(), TUNSETOFFLOAD, flags) != 0) throw system_error("tap " + name_ + ": TUNSETOFFLOAD");
}

bool Tap::wait_until_running(int timeout_ms) const {
    UniqueFd probe(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!probe.valid()) return false;
    ifreq request{};
    std::strncpy(request.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
        if (::ioctl(probe.get(), SIOCGIFFLAGS, &request) != 0) return false;
        if (request.ifr_flags & IFF_RUNNING) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}

}  // namespace kiln::vmm
