#include "netns/names.h"

#include <dirent.h>
#include <sys/mount.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <memory>

#include "netns/error.h"
#include "netns/rtnetlink.h"

namespace kiln::netns {

namespace {

constexpr const char* kRunDir = "/run/netns";

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

bool is_stale(const std::string& name, const std::string& prefix) {
    const auto owner = name_owner(name, prefix);
    return owner && *owner != ::getpid() && !process_exists(*owner);
}

std::vector<std::string> namespace_files() {
    std::vector<std::string> names;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(kRunDir), ::closedir);
    if (!dir) {
        if (errno == ENOENT) return names;
        throw system_error(std::string("sweep: ") + kRunDir);
    }
    while (const dirent* entry = ::readdir(dir.get())) names.emplace_back(entry->d_name);
    return names;
}

}  // namespace

std::string owned_name(const std::string& prefix, const std::string& what, pid_t pid) {
    return prefix + "-" + std::to_string(pid) + "-" + what;
}

std::optional<pid_t> name_owner(const std::string& name, const std::string& prefix) {
    if (name.size() <= prefix.size() + 1 || name.compare(0, prefix.size(), prefix) != 0 || name[prefix.size()] != '-')
        return std::nullopt;
    const size_t start = prefix.size() + 1;
    size_t end = start;
    while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
    if (end == start || end - start > 9 || end >= name.size() || name[end] != '-') return std::nullopt;
    const long pid = std::strtol(name.c_str() + start, nullptr, 10);
    if (pid <= 0) return std::nullopt;
    return static_cast<pid_t>(pid);
}

SweepResult sweep_stale(const std::string& prefix) {
    if (prefix.empty()) throw NetnsError("sweep: empty prefix");
    SweepResult result;
    for (const std::string& name : namespace_files()) {
        if (!is_stale(name, prefix)) continue;
        const std::string path = std::string(kRunDir) + "/" + name;
        // EINVAL: not mounted (its creator died between creating the file and the mount).
        if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
            throw system_error("sweep: unmount " + path);
        if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw system_error("sweep: remove " + path);
        result.namespaces.push_back(name);
    }
    Rtnetlink netlink("sweep");
    for (const Link& link : netlink.links()) {
        if (!is_stale(link.name, prefix)) continue;
        // Deleting one end of a veth pair deletes the other: it may be gone already.
        if (!netlink.find(link.name)) continue;
        netlink.delete_link(link.name);
        result.links.push_back(link.name);
    }
    return result;
}

}  // namespace kiln::netns
