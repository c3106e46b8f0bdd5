#include "images/rootfs.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxRootfs = size_t{2} << 30;  // 2 GiB: more than a unikernel image should ever hold

// "/a/./b/" -> "/a/b"; refuses paths that climb out of the image ("../x", "a/../../x").
std::string normal_path(const std::string& source, const std::string& raw) {
    const fs::path relative = fs::path(raw).relative_path().lexically_normal();
    if (!relative.empty() && *relative.begin() == "..")
        throw RootfsError(source + ": entry '" + raw + "' leaves the image");
    std::string text = (fs::path("/") / relative).lexically_normal().string();
    while (text.size() > 1 && text.back() == '/') text.pop_back();
    return text;
}

class Collector {
  public:
    explicit Collector(std::string source) : source_(std::move(source)) {}

    void add(std::string path, unsigned mode, std::string data, uint32_t uid = 0, uint32_t gid = 0) {
        if (path == "/") return;
        total_ += data.size();
        if (total_ > kMaxRootfs) throw RootfsError(source_ + ": larger than 2 GiB");
        entries_[path] = {path, mode, std::move(data), uid, gid};
    }

    const RootfsEntry* find(const std::string& path) const {
        auto it = entries_.find(path);
        return it == entries_.end() ? nullptr : &it->second;
    }

    std::vector<RootfsEntry> finish() { return complete_entries(std::move(entries_)); }

  private:
    std::string source_;
    std::map<std::string, RootfsEntry> entries_;  // sorted by path
    size_t total_ = 0;
};

}  // namespace

std::vector<RootfsEntry> complete_entries(std::map<std::string, RootfsEntry> entries) {
    std::vector<std::string> parents;
    for (const auto& [path, entry] : entries)
        for (fs::path p = fs::path(path).parent_path(); p != "/" && !p.empty(); p = p.parent_path())
            if (!entries.count(p.string())) parents.push_back(p.string());
    for (const auto& p : parents) entries[p] = {p, S_IFDIR | 0755, {}};
    std::vector<RootfsEntry> out;
    out.reserve(entries.size());
    for (auto& [path, entry] : entries) out.push_back(std::move(entry));
    return out;
}

// Straight into a string of the file's size: a stringstream would copy every byte twice more,
// and on this kind of host each fresh page written costs microseconds.
std::string read_file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw RootfsError(path + ": cannot read it");
    const std::streamoff size = in.tellg();
    if (size < 0 || static_cast<uint64_t>(size) > kMaxRootfs) throw RootfsError(path + ": cannot read it");
    std::string bytes(static_cast<size_t>(size), '\0');
    in.seekg(0);
    if (!in.read(bytes.data(), size)) throw RootfsError(path + ": cannot read it");
    return bytes;
}

namespace {

std::vector<RootfsEntry> read_directory(const std::string& source) {
    Collector collector(source);
    std::error_code error;
    fs::recursive_directory_iterator it(source, fs::directory_options::none, error), end;
    if (error) throw RootfsError(source + ": " + error.message());
    for (; it != end; it.increment(error)) {
        if (error) throw RootfsError(source + ": " + error.message());
        const fs::path& path = it->path();
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) throw RootfsError(path.string() + ": cannot stat it");
        // Lexically: fs::relative would follow a symbolic link, to the host's files or to none.
        const std::string inside = normal_path(source, path.lexically_relative(source).string());
        const unsigned permissions = st.st_mode & 07777;
        if (S_ISDIR(st.st_mode)) {
            collector.add(inside, S_IFDIR | permissions, {});
        } else if (S_ISREG(st.st_mode)) {
            collector.add(inside, S_IFREG | permissions, read_file_bytes(path.string()));
        } else if (S_ISLNK(st.st_mode)) {
            collector.add(inside, S_IFLNK | 0777, fs::read_symlink(path).string());
        } else {
            throw RootfsError(path.string() + ": not a file, directory or symbolic link");
        }
    }
    return collector.finish();
}

struct ArchiveReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};

std::vector<RootfsEntry> read_archive(const std::string& source) {
    std::unique_ptr<archive, ArchiveReadDeleter> a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    archive_read_support_format_cpio(a.get());
    if (archive_read_open_filename(a.get(), source.c_str(), 65536) != ARCHIVE_OK)
        throw RootfsError(source + ": " + archive_error_string(a.get()));
    Collector collector(source);
    archive_entry* entry = nullptr;
    int status;
    while ((status = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
        const char* raw = archive_entry_pathname(entry);
        const std::string inside = normal_path(source, raw ? raw : "");
        const unsigned mode = archive_entry_mode(entry);
        const unsigned permissions = mode & 07777;
        const auto uid = static_cast<uint32_t>(archive_entry_uid(entry));
        const auto gid = static_cast<uint32_t>(archive_entry_gid(entry));
        switch (mode & S_IFMT) {
            case S_IFDIR: collector.add(inside, S_IFDIR | permissions, {}, uid, gid); break;
            case S_IFLNK: {
                const char* target = archive_entry_symlink(entry);
                collector.add(inside, S_IFLNK | 0777, target ? target : "", uid, gid);
                break;
            }
            case S_IFREG: {
                if (const char* hard = archive_entry_hardlink(entry)) {
                    // A hard link in a tarball: the same contents again.
                    const std::string target = normal_path(source, hard);
                    const RootfsEntry* original = collector.find(target);
                    if (!original) throw RootfsError(source + ": " + inside + " links to missing " + target);
                    collector.add(inside, S_IFREG | permissions, std::string(original->data), uid, gid);
                    break;
                }
                std::string data;
                const la_int64_t size = archive_entry_size(entry);
                if (size < 0 || static_cast<uint64_t>(size) > kMaxRootfs)
                    throw RootfsError(source + ": " + inside + ": bad size");
                data.resize(static_cast<size_t>(size));
                const la_ssize_t n = archive_read_data(a.get(), data.data(), data.size());
                if (n < 0 || static_cast<size_t>(n) != data.size())
                    throw RootfsError(source + ": " + inside + ": truncated");
                collector.add(inside, S_IFREG | permissions, std::move(data), uid, gid);
                break;
            }
            default: throw RootfsError(source + ": " + inside + ": devices and fifos do not belong in a rootfs");
        }
    }
    if (status != ARCHIVE_EOF) throw RootfsError(source + ": " + archive_error_string(a.get()));
    return collector.finish();
}

void put_hex(std::string& out, uint64_t value) {
    char field[9];
    std::snprintf(field, sizeof(field), "%08llx", static_cast<unsigned long long>(value & 0xffffffff));
    out.append(field, 8);
}

void pad4(std::string& out) {
    while (out.size() % 4) out.push_back('\0');
}

// A file of a page or more starts on a page boundary of the archive, its name padded with NULs
// (which cpio readers, the kernel's included, take as the name's end): the kernel then uses the
// read-only pages of its programs in place instead of copying them (docs/architecture.md).
void put_cpio_entry(std::string& out, uint64_t inode, const std::string& name, unsigned mode, const std::string& data,
                    uint32_t uid = 0, uint32_t gid = 0) {
    constexpr size_t kHeaderSize = 110, kPage = 4096;
    size_t name_size = name.size() + 1;
    if ((mode & S_IFMT) == S_IFREG && data.size() >= kPage)
        name_size += (kPage - (out.size() + kHeaderSize + name_size) % kPage) % kPage;
    out += "070701";
    put_hex(out, inode);
    put_hex(out, mode);
    put_hex(out, uid);
    put_hex(out, gid);
    put_hex(out, (mode & S_IFMT) == S_IFDIR ? 2 : 1);
    put_hex(out, 0);  // mtime: zero, so archives are reproducible
    put_hex(out, data.size());
    for (int i = 0; i < 4; ++i) put_hex(out, 0);  // devmajor, devminor, rdevmajor, rdevminor
    put_hex(out, name_size);
    put_hex(out, 0);  // check
    out += name;
    out.append(name_size - name.size(), '\0');
    pad4(out);
    out += data;
    pad4(out);
}

}  // namespace

std::vector<RootfsEntry> read_rootfs(const std::string& source) {
    std::error_code error;
    if (fs::is_directory(source, error)) return read_directory(source);
    if (!fs::is_regular_file(source, error)) throw RootfsError(source + ": not a directory, cpio archive or tarball");
    return read_archive(source);
}

// Written by hand rather than with libarchive's writer: newc is 13 fixed fields per entry, and
// libarchive would need its own entry objects only to be told to zero the same times.
std::string write_cpio(const std::vector<RootfsEntry>& entries) {
    std::string out;
    size_t bound = 4096;  // the trailer; each entry's header, name, page alignment and padding below
    for (const auto& e : entries) bound += 110 + e.path.size() + 4096 + e.data.size() + 8;
    out.reserve(bound);
    uint64_t inode = 1;
    for (const auto& e : entries) put_cpio_entry(out, inode++, e.path.substr(1), e.mode, e.data, e.uid, e.gid);
    put_cpio_entry(out, 0, "TRAILER!!!", 0, {});
    return out;
}

const RootfsEntry* find_entry(const std::vector<RootfsEntry>& entries, const std::string& path) {
    std::string current = path;
    for (int hops = 0; hops < 16; ++hops) {
        auto it = std::lower_bound(entries.begin(), entries.end(), current,
                                   [](const RootfsEntry& e, const std::string& p) { return e.path < p; });
        if (it == entries.end() || it->path != current) return nullptr;
        if ((it->mode & S_IFMT) != S_IFLNK) return &*it;
        const fs::path target(it->data);
        current =
            (target.is_absolute() ? target : fs::path(current).parent_path() / target).lexically_normal().string();
    }
    return nullptr;
}

namespace {

bool is_id(const std::string& text) {
    return !text.empty() && text.size() <= 10 && text.find_first_not_of("0123456789") == std::string::npos;
}

uint32_t id(const std::string& text, const std::string& who) {
    if (!is_id(text) || std::stoull(text) > 0xfffffffeull)
        throw RootfsError("USER " + who + ": '" + text + "' is not a user or group id");
    return static_cast<uint32_t>(std::stoull(text));
}

// The colon-separated fields (at least `fields_needed`) of the line of /etc/passwd or /etc/group
// naming `name`: by its first field, or by its id (the third) for a number.
std::optional<std::vector<std::string>> account_entry(const RootfsEntry* file, const std::string& name,
                                                      size_t fields_needed) {
    if (!file || (file->mode & S_IFMT) != S_IFREG) return std::nullopt;
    std::istringstream lines(file->data);
    for (std::string text; std::getline(lines, text);) {
        std::vector<std::string> fields;
        std::istringstream parts(text);
        for (std::string field; std::getline(parts, field, ':');) fields.push_back(field);
        if (fields.size() < fields_needed) continue;
        if (fields[0] == name || (is_id(name) && fields[2] == name)) return fields;
    }
    return std::nullopt;
}

}  // namespace

std::pair<uint32_t, uint32_t> resolve_user(const std::string& who,
                                           const std::function<const RootfsEntry*(const std::string& path)>& file) {
    const size_t colon = who.find(':');
    const std::string name = who.substr(0, colon), group = colon == std::string::npos ? "" : who.substr(colon + 1);
    const auto account = account_entry(file("/etc/passwd"), name, 4);
    uint32_t uid = 0, gid = 0;
    if (name == "root" && !account) {  // root needs no line, as a scratch image has none
    } else if (account) {
        uid = id(account->at(2), who);
        gid = id(account->at(3), who);
    } else if (is_id(name)) {
        uid = id(name, who);
    } else {
        throw RootfsError("USER " + who + ": no user '" + name + "' in the image's /etc/passwd");
    }
    if (!group.empty()) {
        if (const auto entry = account_entry(file("/etc/group"), group, 3))
            gid = id(entry->at(2), who);
        else if (group == "root")
            gid = 0;
        else if (is_id(group))
            gid = id(group, who);
        else
            throw RootfsError("USER " + who + ": no group '" + group + "' in the image's /etc/group");
    }
    return {uid, gid};
}

}  // namespace kiln::images
