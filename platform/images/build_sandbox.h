// The sandbox a Dockerfile's RUN runs in: bubblewrap (Debian's bubblewrap, the sandbox Flatpak
// uses) on a directory that holds the image built so far as its root, with its own mount, PID,
// IPC, UTS and network namespaces (no network: a build is made from its context alone) and the
// few capabilities a build's file work needs. What the command leaves in that directory is the
// image's next state.
//
// A library rather than our own namespaces: bubblewrap is small, audited and kept, and does the
// mount set-up (a root from a directory, /dev and /proc inside it) the way a sandbox must.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "images/rootfs.h"

namespace kiln::images {

class SandboxError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct SandboxCommand {
    std::vector<std::string> argv;                         // argv[0] is looked up in the image's PATH
    std::vector<std::pair<std::string, std::string>> env;  // the whole environment
    std::string workdir = "/";
    uint32_t uid = 0, gid = 0;  // who runs it (a USER before the RUN)
};

// Runs `command` on a root file system made of `entries` (as read_rootfs gives them) and returns
// the file system it leaves, in the same form. The command's output goes to this process's
// standard error. Throws SandboxError if the sandbox cannot be made or the command fails (its exit
// status or signal named).
std::vector<RootfsEntry> run_in_build_sandbox(const std::vector<RootfsEntry>& entries, const SandboxCommand& command);

}  // namespace kiln::images
