#include "instances/tender_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "host/tender_orders.h"
#include "instances/tender_spawn.h"

namespace kiln::instances {

TenderPool::TenderPool(std::map<std::string, std::string> binaries, int netns)
    : binaries_(std::move(binaries)), netns_(netns) {}

std::optional<TenderPool::Tender> TenderPool::take(const std::string& platform) {
    const auto it = waiting_.find(platform);
    if (it == waiting_.end()) return std::nullopt;
    Tender tender = std::move(it->second);
    waiting_.erase(it);
    last_take_ = std::chrono::steady_clock::now();
    // A tender that died waiting has hung up its end.
    pollfd hangup{tender.orders.get(), 0, 0};
    if (::poll(&hangup, 1, 0) != 0) return std::nullopt;
    return tender;
}

void TenderPool::refill() {
    if (std::chrono::steady_clock::now() - last_take_ < kRefillAfter) return;
    for (const auto& [platform, binary] : binaries_) {
        auto it = waiting_.find(platform);
        if (it != waiting_.end()) {
            pollfd hangup{it->second.orders.get(), 0, 0};
            if (::poll(&hangup, 1, 0) == 0) continue;
            waiting_.erase(it);  // died waiting: replaced below
        }
        if (!start(platform))
            std::fprintf(stderr, "kilnd: starting a waiting %s: %s\n", binary.c_str(), std::strerror(errno));
    }
}

bool TenderPool::start(const std::string& platform) {
    int ends[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) return false;
    UniqueFd ours(ends[0]), theirs(ends[1]);
    UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null.valid()) return false;
    std::string binary = binaries_.at(platform);
    std::string flag = host::kAwaitOrdersFlag, fd = "3", padding(host::kOrdersPadding, ' ');
    char* argv[] = {binary.data(), flag.data(), fd.data(), padding.data(), nullptr};
    const pid_t pid = spawn_tender(argv, {null.get(), null.get(), null.get(), netns_, theirs.get()});
    if (pid < 0) return false;
    waiting_[platform] = Tender{pid, std::move(ours)};
    return true;
}

}  // namespace kiln::instances
