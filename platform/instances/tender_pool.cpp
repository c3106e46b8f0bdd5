#include "instances/tender_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "host/tender_orders.h"
#include "instances/tender_spawn.h"

namespace kiln::instances {

TenderPool::TenderPool(std::map<std::string, std::string> binaries, int netns, const Cgroups* cgroups)
    : binaries_(std::move(binaries)), netns_(netns), cgroups_(cgroups) {}

TenderPool::~TenderPool() {
    for (auto& [platform, tender] : waiting_) end(tender);
}

void TenderPool::end(Tender& tender) {
    ::kill(-tender.pid, SIGKILL);  // its group: the instance process it forked too
    while (::waitpid(-tender.pid, nullptr, 0) > 0 || errno == EINTR) {
    }
    if (!tender.group.empty()) cgroups_->remove(tender.group);
}

std::optional<TenderPool::Tender> TenderPool::take(const std::string& platform) {
    const auto it = waiting_.find(platform);
    if (it == waiting_.end()) return std::nullopt;
    Tender tender = std::move(it->second);
    waiting_.erase(it);
    last_take_ = std::chrono::steady_clock::now();
    // A tender that died waiting has hung up its end.
    pollfd hangup{tender.orders.get(), 0, 0};
    if (::poll(&hangup, 1, 0) != 0) {
        end(tender);
        return std::nullopt;
    }
    return tender;
}

std::optional<std::chrono::steady_clock::time_point> TenderPool::next_refill() const {
    if (waiting_.size() == binaries_.size()) return std::nullopt;  // a tender dying waiting waits for a round
    return last_take_ + kRefillAfter;
}

void TenderPool::refill() {
    if (std::chrono::steady_clock::now() - last_take_ < kRefillAfter) return;
    for (const auto& [platform, binary] : binaries_) {
        auto it = waiting_.find(platform);
        if (it != waiting_.end()) {
            pollfd hangup{it->second.orders.get(), 0, 0};
            if (::poll(&hangup, 1, 0) == 0) continue;
            end(it->second);  // died waiting: replaced below
            waiting_.erase(it);
        }
        if (!start(platform)) {
            std::fprintf(stderr, "kilnd: starting a waiting %s: %s\n", binary.c_str(), std::strerror(errno));
            last_take_ = std::chrono::steady_clock::now();  // the next try in kRefillAfter, not at once
        }
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
    std::string group;
    std::vector<UniqueFd> procs;
    if (cgroups_) {
        group = "waiting-" + std::to_string(++groups_made_);
        try {
            procs = cgroups_->prepare(group, Limits{});
        } catch (const std::exception& e) {
            std::fprintf(stderr, "kilnd: a waiting tender's cgroup: %s\n", e.what());
            cgroups_->remove(group);
            return false;
        }
    }
    std::vector<int> procs_fds;
    for (const auto& open_procs : procs) procs_fds.push_back(open_procs.get());
    const pid_t pid = spawn_tender(argv, {null.get(), null.get(), null.get(), netns_, theirs.get(), procs_fds.data(),
                                          static_cast<int>(procs_fds.size())});
    if (pid < 0) {
        if (!group.empty()) cgroups_->remove(group);
        return false;
    }
    waiting_[platform] = Tender{pid, std::move(ours), std::move(group)};
    return true;
}

}  // namespace kiln::instances
