// Owned names: every namespace and host link a process creates is called
// "<prefix>-<pid>-<what>" ("kt-4242-net" for a test, another prefix for the daemon), so that the
// next run can tell what a crashed process left behind and remove it (sweep_stale).
//
// Interface names are at most 15 bytes: keep prefix and `what` short for links ("kt-4194304-" is
// already 11). Links inside a Namespace need no owned name; they go with the namespace.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

namespace kiln::netns {

std::string owned_name(const std::string& prefix, const std::string& what, pid_t pid = ::getpid());

// The owner's pid if `name` is "<prefix>-<pid>-...", else nullopt.
std::optional<pid_t> name_owner(const std::string& name, const std::string& prefix);

struct SweepResult {
    std::vector<std::string> namespaces;  // removed from /run/netns
    std::vector<std::string> links;       // removed from the caller's namespace
};

// Removes the namespaces (/run/netns/<prefix>-<pid>-*) and the links of the caller's network
// namespace (normally the host's) whose owner pid no longer exists. Names owned by live processes,
// this one included, are left alone. (A recycled pid keeps its leftovers until that process
// ends too; pids are rarely recycled that fast.) Throws NetnsError if something stale cannot
// be removed.
SweepResult sweep_stale(const std::string& prefix);

}  // namespace kiln::netns
