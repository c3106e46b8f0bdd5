#include "images/build_sandbox.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

extern char** environ;

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

// A private directory under the host's temporary directory, removed with everything in it.
class ScratchDirectory {
  public:
    ScratchDirectory() {
        std::string pattern = (fs::temp_directory_path() / "kiln-run-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr)
            throw SandboxError("cannot make a directory for the build sandbox: " + std::string(std::strerror(errno)));
        path_ = pattern;
    }
    ~ScratchDirectory() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    ScratchDirectory(const ScratchDirectory&) = delete;
    ScratchDirectory& operator=(const ScratchDirectory&) = delete;
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

void write_entries(const fs::path& root, const std::vector<RootfsEntry>& entries) {
    for (const RootfsEntry& entry : entries) {  // sorted by path: a directory comes before its files
        const fs::path at = root / fs::path(entry.path).relative_path();
        const unsigned type = entry.mode & S_IFMT;
        if (type == S_IFDIR) {
            if (::mkdir(at.c_str(), 0700) != 0 && errno != EEXIST)
                throw SandboxError(entry.path + ": cannot make it: " + std::strerror(errno));
        } else if (type == S_IFLNK) {
            fs::create_symlink(entry.data, at);
        } else {
            std::ofstream(at, std::ios::binary) << entry.data;
        }
    }
    // Modes last: a directory without write permission is still filled first.
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        if ((it->mode & S_IFMT) != S_IFLNK)
            ::chmod((root / fs::path(it->path).relative_path()).c_str(), it->mode & 07777);
}

std::vector<std::string> bubblewrap_argv(const fs::path& root, const SandboxCommand& command) {
    std::vector<std::string> argv = {"bwrap",
                                     "--bind",
                                     root.string(),
                                     "/",
                                     "--dev",
                                     "/dev",
                                     "--proc",
                                     "/proc",
                                     "--unshare-ipc",
                                     "--unshare-pid",
                                     "--unshare-net",
                                     "--unshare-uts",
                                     "--unshare-cgroup-try",
                                     "--die-with-parent",
                                     "--new-session",
                                     "--clearenv"};
    if (command.uid != 0 || command.gid != 0) {
        // Another user (a USER before the RUN): as that uid and gid in a user namespace of its own,
        // whose root is this process's uid, with no capabilities at all.
        argv.insert(argv.end(),
                    {"--unshare-user", "--uid", std::to_string(command.uid), "--gid", std::to_string(command.gid)});
    } else if (::geteuid() == 0) {
        // As root bubblewrap would keep every capability: only those a build's file work needs.
        for (const char* cap : {"--cap-drop", "ALL", "--cap-add", "CAP_CHOWN", "--cap-add", "CAP_DAC_OVERRIDE",
                                "--cap-add", "CAP_FOWNER", "--cap-add", "CAP_FSETID"})
            argv.emplace_back(cap);
    } else {
        argv.emplace_back("--unshare-user");
    }
    for (const auto& [name, value] : command.env) argv.insert(argv.end(), {"--setenv", name, value});
    argv.insert(argv.end(), {"--chdir", command.workdir, "--"});
    argv.insert(argv.end(), command.argv.begin(), command.argv.end());
    return argv;
}

// Runs bubblewrap with stdin from /dev/null and stdout onto stderr; returns its wait status.
int spawn_and_wait(const std::vector<std::string>& argv) {
    std::vector<char*> raw;
    for (const std::string& s : argv) raw.push_back(const_cast<char*>(s.c_str()));
    raw.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid = 0;
    const int error = ::posix_spawnp(&pid, raw[0], &actions, nullptr, raw.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0)
        throw SandboxError("cannot start bwrap (Debian's bubblewrap, from scripts/install-deps): " +
                           std::string(std::strerror(error)));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw SandboxError("waiting for bwrap: " + std::string(std::strerror(errno)));
    return status;
}

std::string describe(const std::vector<std::string>& argv) {
    std::string out;
    for (const std::string& word : argv) out += (out.empty() ? "" : " ") + word;
    return out;
}

}  // namespace

std::vector<RootfsEntry> run_in_build_sandbox(const std::vector<RootfsEntry>& entries, const SandboxCommand& command) {
    if (command.argv.empty()) throw SandboxError("no command to run");
    ScratchDirectory root;
    write_entries(root.path(), entries);
    // bubblewrap makes the mount points it needs inside the root: not part of the image unless
    // the image had them.
    std::vector<fs::path> mount_points;
    for (const char* dir : {"dev", "proc"})
        if (!fs::exists(root.path() / dir)) mount_points.push_back(root.path() / dir);
    const int status = spawn_and_wait(bubblewrap_argv(root.path(), command));
    if (WIFSIGNALED(status))
        throw SandboxError("'" + describe(command.argv) + "' was killed by signal " + std::to_string(WTERMSIG(status)));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw SandboxError("'" + describe(command.argv) + "' exited with status " +
                           std::to_string(WEXITSTATUS(status)));
    std::error_code ignored;
    for (const fs::path& point : mount_points)
        if (fs::is_directory(point, ignored) && fs::is_empty(point, ignored)) fs::remove(point, ignored);
    // The sandbox cannot keep owners (its files are this process's): a path that was there before
    // keeps its owner, one the command made belongs to the user it ran as. A chown inside a RUN
    // is lost.
    std::vector<RootfsEntry> after = read_rootfs(root.path().string());
    std::map<std::string, std::pair<uint32_t, uint32_t>> owners;
    for (const RootfsEntry& entry : entries) owners[entry.path] = {entry.uid, entry.gid};
    for (RootfsEntry& entry : after) {
        const auto it = owners.find(entry.path);
        std::tie(entry.uid, entry.gid) = it != owners.end() ? it->second : std::pair{command.uid, command.gid};
    }
    return after;
}

}  // namespace kiln::images
