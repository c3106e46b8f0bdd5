#include "volumes/volume_store.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "host/unique_fd.h"
#include "instances/instance_store.h"

extern char** environ;

namespace kiln::volumes {
namespace fs = std::filesystem;

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::runtime_error system_error(const std::string& what) {
    return std::runtime_error(what + ": " + std::strerror(errno));
}

// mke2fs from e2fsprogs, where Debian puts it (sbin may not be in kilnd's PATH).
std::string mke2fs_path() {
    for (const char* path : {"/usr/sbin/mke2fs", "/sbin/mke2fs"})
        if (::access(path, X_OK) == 0) return path;
    return "mke2fs";
}

// Runs argv, its output and errors gathered; throws with them if it fails.
void run(const std::vector<std::string>& argv) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw system_error("pipe");
    UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    write_end.reset();
    if (spawned != 0) throw std::runtime_error(argv[0] + ": " + std::strerror(spawned) + " (install e2fsprogs)");
    std::string output;
    char buffer[4096];
    for (ssize_t n; (n = ::read(read_end.get(), buffer, sizeof(buffer))) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) break;
        output.append(buffer, static_cast<size_t>(n));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
        for (auto& c : output)
            if (c == '\n') c = ' ';
        throw std::runtime_error(argv[0] + " failed" + (output.empty() ? std::string() : ": " + output));
    }
}

void sync_directory(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.valid()) ::fsync(fd.get());
}

void sync_file(const std::string& file) {
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) throw system_error(file);
}

}  // namespace

void make_ext4(const std::string& file, int64_t size_mb, const std::string& label) {
    {
        UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
        if (!fd.valid()) throw system_error(file);
        if (::ftruncate(fd.get(), size_mb << 20) != 0) throw system_error(file);
    }
    run({mke2fs_path(), "-q", "-F", "-t", "ext4", "-b", "4096", "-O",
         "^metadata_csum,^64bit,^dir_index,^orphan_file,^resize_inode,^uninit_bg,^huge_file", "-E",
         "lazy_itable_init=0,lazy_journal_init=0", "-L", label.substr(0, 16), file});
    sync_file(file);
}

void copy_file(const std::string& from, const std::string& to) {
    UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in.valid()) throw system_error(from);
    UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!out.valid()) throw system_error(to);
    if (::ioctl(out.get(), FICLONE, in.get()) != 0) {
        struct stat st {};
        if (::fstat(in.get(), &st) != 0) throw system_error(from);
        // The bytes, holes kept: only the data extents are copied, the size set at the end.
        off_t offset = 0;
        while (offset < st.st_size) {
            off_t data = ::lseek(in.get(), offset, SEEK_DATA);
            if (data < 0) break;  // ENXIO: only a hole is left
            off_t hole = ::lseek(in.get(), data, SEEK_HOLE);
            if (hole < 0) hole = st.st_size;
            loff_t source = data, target = data;
            size_t left = static_cast<size_t>(hole - data);
            while (left > 0) {
                const ssize_t n = ::copy_file_range(in.get(), &source, out.get(), &target, left, 0);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) throw system_error("copying " + from + " to " + to);
                if (n == 0) break;
                left -= static_cast<size_t>(n);
            }
            offset = hole;
        }
        if (::ftruncate(out.get(), st.st_size) != 0) throw system_error(to);
    }
    if (::fsync(out.get()) != 0) throw system_error(to);
}

VolumeStore::VolumeStore(store::Database& db, const std::string& state_dir)
    : db_(db), dir_((fs::path(state_dir) / "volumes").string()) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS volumes (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
        "size_mb INTEGER NOT NULL, created_ns INTEGER NOT NULL, file TEXT NOT NULL)");
    // seq: the order of attachment, which is the order of an instance's block devices.
    db_.exec(
        "CREATE TABLE IF NOT EXISTS volume_attachments (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "volume TEXT NOT NULL, instance TEXT NOT NULL, at TEXT NOT NULL, readonly INTEGER NOT NULL, "
        "UNIQUE (volume, instance), UNIQUE (instance, at))");
    fs::create_directories(dir_);
    ::chmod(dir_.c_str(), 0700);
    // What a kilnd killed mid-create or mid-delete left: files with no row.
    std::set<std::string> known;
    for (const auto& v : list()) known.insert(fs::path(v.file).filename().string());
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir_, error))
        if (!known.count(entry.path().filename().string())) fs::remove(entry.path(), error);
}

Volume VolumeStore::insert(const std::string& name, int64_t size_mb, const std::string& uuid, const std::string& part) {
    Volume v;
    v.uuid = uuid;
    v.name = name;
    v.size_mb = size_mb;
    v.created_ns = now_ns();
    v.file = (fs::path(dir_) / (uuid + ".ext4")).string();
    fs::rename(part, v.file);
    sync_directory(dir_);
    try {
        store::Statement s(db_, "INSERT INTO volumes (uuid, name, size_mb, created_ns, file) VALUES (?, ?, ?, ?, ?)");
        s.bind(1, v.uuid).bind(2, v.name).bind(3, v.size_mb).bind(4, v.created_ns).bind(5, v.file);
        s.step();
    } catch (...) {
        std::error_code error;
        fs::remove(v.file, error);
        throw;
    }
    return v;
}

Volume VolumeStore::create(const std::string& name, int64_t size_mb) {
    const std::string uuid = instances::new_uuid();
    const std::string part = (fs::path(dir_) / (uuid + ".part")).string();
    try {
        make_ext4(part, size_mb, name);
    } catch (...) {
        std::error_code error;
        fs::remove(part, error);
        throw;
    }
    return insert(name, size_mb, uuid, part);
}

Volume VolumeStore::clone(const Volume& source, const std::string& name) {
    const std::string uuid = instances::new_uuid();
    const std::string part = (fs::path(dir_) / (uuid + ".part")).string();
    try {
        copy_file(source.file, part);
    } catch (...) {
        std::error_code error;
        fs::remove(part, error);
        throw;
    }
    return insert(name, source.size_mb, uuid, part);
}

void VolumeStore::remove(const Volume& volume) {
    {
        store::Transaction t(db_);
        store::Statement(db_, "DELETE FROM volume_attachments WHERE volume = ?").bind(1, volume.uuid).step();
        store::Statement(db_, "DELETE FROM volumes WHERE uuid = ?").bind(1, volume.uuid).step();
        t.commit();
    }
    std::error_code error;
    fs::remove(volume.file, error);
}

namespace {

constexpr const char* kColumns = "uuid, name, size_mb, created_ns, file";

Volume from_row(const store::Statement& row) {
    Volume v;
    v.uuid = row.text(0);
    v.name = row.text(1);
    v.size_mb = row.integer(2);
    v.created_ns = row.integer(3);
    v.file = row.text(4);
    return v;
}

std::vector<Attachment> attachment_rows(store::Statement& s) {
    std::vector<Attachment> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.text(2), s.integer(3) != 0});
    return out;
}

}  // namespace

std::optional<Volume> VolumeStore::find(const std::string& uuid_or_name) {
    store::Statement s(db_, (std::string("SELECT ") + kColumns + " FROM volumes WHERE uuid = ?1 OR name = ?1").c_str());
    s.bind(1, uuid_or_name);
    if (!s.step()) return std::nullopt;
    Volume v = from_row(s);
    v.attachments = attachments_of_volume(v.uuid);
    return v;
}

std::vector<Volume> VolumeStore::list() {
    store::Statement s(db_, (std::string("SELECT ") + kColumns + " FROM volumes ORDER BY created_ns").c_str());
    std::vector<Volume> out;
    while (s.step()) out.push_back(from_row(s));
    for (auto& v : out) v.attachments = attachments_of_volume(v.uuid);
    return out;
}

void VolumeStore::attach(const Attachment& a) {
    store::Statement s(db_, "INSERT INTO volume_attachments (volume, instance, at, readonly) VALUES (?, ?, ?, ?)");
    s.bind(1, a.volume).bind(2, a.instance).bind(3, a.at).bind(4, int64_t{a.readonly ? 1 : 0});
    s.step();
}

void VolumeStore::detach(const std::string& volume_uuid, const std::string& instance_uuid) {
    store::Statement(db_, "DELETE FROM volume_attachments WHERE volume = ? AND instance = ?")
        .bind(1, volume_uuid)
        .bind(2, instance_uuid)
        .step();
}

void VolumeStore::detach_instance(const std::string& instance_uuid) {
    store::Statement(db_, "DELETE FROM volume_attachments WHERE instance = ?").bind(1, instance_uuid).step();
}

std::vector<Attachment> VolumeStore::attachments_of_volume(const std::string& volume_uuid) {
    store::Statement s(db_,
                       "SELECT volume, instance, at, readonly FROM volume_attachments WHERE volume = ? ORDER BY seq");
    s.bind(1, volume_uuid);
    return attachment_rows(s);
}

std::vector<Attachment> VolumeStore::attachments_of_instance(const std::string& instance_uuid) {
    store::Statement s(db_,
                       "SELECT volume, instance, at, readonly FROM volume_attachments WHERE instance = ? ORDER BY seq");
    s.bind(1, instance_uuid);
    return attachment_rows(s);
}

std::vector<VolumeMount> VolumeStore::mounts_of(const std::string& instance_uuid) {
    store::Statement s(db_,
                       "SELECT v.file, a.at, a.readonly FROM volume_attachments a JOIN volumes v ON v.uuid = a.volume "
                       "WHERE a.instance = ? ORDER BY a.seq");
    s.bind(1, instance_uuid);
    std::vector<VolumeMount> out;
    while (s.step()) out.push_back({s.text(0), s.text(1), s.integer(2) != 0});
    return out;
}

}  // namespace kiln::volumes
