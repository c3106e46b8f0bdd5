#include "instances/cgroups.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace kiln::instances {

namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string read_line(const std::string& path) {
    std::ifstream file(path);
    std::string line;
    std::getline(file, line);
    return line;
}

// One write(2) of `text`: a cgroup file takes a value per write, and says what it refuses in errno.
void write_value(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw std::runtime_error("cgroups: write " + text + " to " + path + ": " + std::strerror(errno));
}

void make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
        throw std::runtime_error("cgroups: mkdir " + path + ": " + std::strerror(errno));
}

bool has_word(const std::string& line, const std::string& word) {
    std::istringstream words(line);
    for (std::string w; words >> w;)
        if (w == word) return true;
    return false;
}

}  // namespace

int64_t cpu_weight_of_shares(int64_t shares) {
    return 1 + ((shares - Limits::kMinCpuShares) * 9999) / (Limits::kMaxCpuShares - Limits::kMinCpuShares);
}

Cgroups::Cgroups(const std::string& root, const std::string& parent) {
    // v2 where its one hierarchy has both controllers; a hybrid host (v1's controllers, an empty
    // v2 beside them) takes v1.
    const std::string controllers = read_line(root + "/cgroup.controllers");
    try {
        if (has_word(controllers, "cpu") && has_word(controllers, "pids")) {
            cpu_parent_ = pids_parent_ = root + "/" + parent;
            write_value(root + "/cgroup.subtree_control", "+cpu +pids");
            make_dir(cpu_parent_);
            write_value(cpu_parent_ + "/cgroup.subtree_control", "+cpu +pids");
            version_ = 2;
        } else if (exists(root + "/cpu/cpu.shares") && exists(root + "/pids/cgroup.procs")) {
            cpu_parent_ = root + "/cpu/" + parent;
            pids_parent_ = root + "/pids/" + parent;
            make_dir(cpu_parent_);
            make_dir(pids_parent_);
            version_ = 1;
        } else {
            why_not_ = "no cgroup hierarchy with the cpu and pids controllers under " + root;
        }
    } catch (const std::exception& error) {
        version_ = 0;
        why_not_ = error.what();
    }
}

void Cgroups::remove_parent() const {
    if (version_ == 0) return;
    ::rmdir(cpu_parent_.c_str());
    if (pids_parent_ != cpu_parent_) ::rmdir(pids_parent_.c_str());
}

std::vector<std::string> Cgroups::dirs(const std::string& instance) const {
    if (version_ == 2) return {cpu_parent_ + "/" + instance};
    if (version_ == 1) return {cpu_parent_ + "/" + instance, pids_parent_ + "/" + instance};
    return {};
}

std::vector<UniqueFd> Cgroups::prepare(const std::string& instance, const Limits& limits) const {
    if (version_ == 0) throw std::runtime_error("cgroups: " + why_not_);
    const std::vector<std::string> groups = dirs(instance);
    for (const auto& group : groups) make_dir(group);
    const std::string cpu = groups.front(), pids = groups.back();
    if (version_ == 2)
        write_value(cpu + "/cpu.weight", std::to_string(cpu_weight_of_shares(limits.cpu_shares)));
    else
        write_value(cpu + "/cpu.shares", std::to_string(limits.cpu_shares));
    write_value(pids + "/pids.max", std::to_string(limits.pids_limit));
    std::vector<UniqueFd> procs;
    for (const auto& group : groups) {
        const std::string path = group + "/cgroup.procs";
        procs.emplace_back(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!procs.back().valid()) throw std::runtime_error("cgroups: open " + path + ": " + std::strerror(errno));
    }
    return procs;
}

void Cgroups::move(const std::vector<UniqueFd>& procs, pid_t pid) {
    const std::string text = std::to_string(pid);
    for (const auto& fd : procs)
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            throw std::runtime_error("cgroups: move process " + text + ": " + std::strerror(errno));
}

void Cgroups::move_with_children(const std::vector<UniqueFd>& procs, pid_t pid) {
    move(procs, pid);
    const std::string list = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
    std::ifstream children(list);
    for (pid_t child; children >> child;) move(procs, child);
}

bool Cgroups::adopt(const std::string& group, const std::string& instance) const {
    if (version_ != 1) return false;
    const std::vector<std::string> from = dirs(group), to = dirs(instance);
    for (size_t i = 0; i < from.size(); ++i) {
        if (::rename(from[i].c_str(), to[i].c_str()) != 0) {
            for (size_t j = 0; j < i; ++j) ::rename(to[j].c_str(), from[j].c_str());  // all or none
            return false;
        }
    }
    return true;
}

void Cgroups::remove(const std::string& instance) const {
    for (const auto& group : dirs(instance)) ::rmdir(group.c_str());
}

}  // namespace kiln::instances
