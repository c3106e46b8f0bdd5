#include "images/container_image.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <set>

namespace kiln::images {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxLayerFile = uint64_t{2} << 30;  // as rootfs.cpp's whole rootfs

// libarchive's message, which it may not have.
std::string why(archive* a) {
    const char* message = archive_error_string(a);
    return message ? message : "not a readable tarball";
}

struct ArchiveDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};

// "/a/b" for "./a/b", "a/b/" or "/a//b"; "" for the root. Throws on a path that leaves it.
std::string clean_path(const std::string& layer, const std::string& raw) {
    const fs::path normal = ("/" / fs::path(raw)).lexically_normal();
    std::string path = normal.string();
    for (const auto& part : fs::path(raw))
        if (part == "..") throw RootfsError(layer + ": " + raw + ": a path that leaves the root file system");
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    return path == "/" ? "" : path;
}

// Everything at or below `path`.
void erase_tree(std::map<std::string, RootfsEntry>& entries, const std::string& path, bool keep_path) {
    if (!keep_path) entries.erase(path);
    const std::string prefix = path + "/";
    for (auto it = entries.lower_bound(prefix); it != entries.end() && it->first.rfind(prefix, 0) == 0;)
        it = entries.erase(it);
}

// One layer's changes: its entries, and what it removes from the layers under it.
struct LayerChanges {
    std::map<std::string, RootfsEntry> entries;
    std::set<std::string> whiteouts, opaque;
};

// Read as it comes, not sized from the header: a header's size is only a claim, and a few bytes
// of input must not make a 2 GiB allocation.
std::string read_data(archive* a, archive_entry* entry, const std::string& where) {
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0 || static_cast<uint64_t>(size) > kMaxLayerFile) throw RootfsError(where + ": bad size");
    std::string data;
    char chunk[65536];
    while (true) {
        const la_ssize_t n = archive_read_data(a, chunk, sizeof chunk);
        if (n < 0) throw RootfsError(where + ": " + why(a));
        if (n == 0) break;
        data.append(chunk, static_cast<size_t>(n));
    }
    if (data.size() != static_cast<uint64_t>(size)) throw RootfsError(where + ": truncated");
    return data;
}

// A hard link's target: in this layer, else in the layers under it.
const RootfsEntry* link_target(const LayerChanges& changes, const std::map<std::string, RootfsEntry>& below,
                               const std::string& path) {
    if (const auto found = changes.entries.find(path); found != changes.entries.end()) return &found->second;
    if (const auto found = below.find(path); found != below.end()) return &found->second;
    return nullptr;
}

LayerChanges read_layer(const std::string& bytes, const std::string& name,
                        const std::map<std::string, RootfsEntry>& below) {
    std::unique_ptr<archive, ArchiveDeleter> a(archive_read_new());
    archive_read_support_filter_all(a.get());
    archive_read_support_format_tar(a.get());
    if (archive_read_open_memory(a.get(), bytes.data(), bytes.size()) != ARCHIVE_OK)
        throw RootfsError(name + ": " + why(a.get()));
    LayerChanges changes;
    archive_entry* entry = nullptr;
    int status;
    while ((status = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK) {
        const char* raw = archive_entry_pathname(entry);
        const std::string path = clean_path(name, raw ? raw : "");
        if (path.empty()) continue;  // the root itself
        const std::string where = name + ": " + path;
        const std::string base = fs::path(path).filename().string(), dir = fs::path(path).parent_path().string();
        if (base == ".wh..wh..opq") {
            changes.opaque.insert(dir == "/" ? "" : dir);
            continue;
        }
        if (base.rfind(".wh.", 0) == 0) {
            changes.whiteouts.insert((dir == "/" ? "" : dir) + "/" + base.substr(4));
            continue;
        }
        const unsigned mode = archive_entry_mode(entry), permissions = mode & 07777;
        // The owner as the layer gives it (a later layer's entry replaces the whole entry below).
        const auto uid = static_cast<uint32_t>(archive_entry_uid(entry));
        const auto gid = static_cast<uint32_t>(archive_entry_gid(entry));
        if (const char* hard = archive_entry_hardlink(entry)) {
            // A hard link is the same inode: its mode and owner are the original's.
            const RootfsEntry* original = link_target(changes, below, clean_path(name, hard));
            if (original == nullptr) throw RootfsError(where + " links to missing " + hard);
            changes.entries[path] = {path, original->mode, original->data, original->uid, original->gid};
            continue;
        }
        switch (mode & S_IFMT) {
            case S_IFDIR: changes.entries[path] = {path, S_IFDIR | permissions, {}, uid, gid}; break;
            case S_IFLNK: {
                const char* target = archive_entry_symlink(entry);
                changes.entries[path] = {path, S_IFLNK | 0777, target ? target : "", uid, gid};
                break;
            }
            case S_IFREG:
                changes.entries[path] = {path, S_IFREG | permissions, read_data(a.get(), entry, where), uid, gid};
                break;
            default: break;  // devices and fifos: an instance has no use for them
        }
    }
    if (status != ARCHIVE_EOF) throw RootfsError(name + ": " + why(a.get()));
    return changes;
}

void apply(std::map<std::string, RootfsEntry>& result, LayerChanges changes) {
    for (const auto& dir : changes.opaque) erase_tree(result, dir, true);
    for (const auto& path : changes.whiteouts) erase_tree(result, path, false);
    for (auto& [path, entry] : changes.entries) {
        // Anything but a directory takes what was below its path along (a directory the layers
        // below made, listed or only implied by its files).
        if ((entry.mode & S_IFMT) != S_IFDIR) erase_tree(result, path, true);
        result[path] = std::move(entry);
    }
}

std::vector<std::string> strings(const json& j, const std::string& what) {
    std::vector<std::string> out;
    if (j.is_null()) return out;
    if (!j.is_array()) throw RootfsError("container config: " + what + " is not a list");
    for (const auto& item : j) {
        if (!item.is_string()) throw RootfsError("container config: " + what + " holds a non-string");
        out.push_back(item);
    }
    return out;
}

}  // namespace

std::vector<RootfsEntry> unpack_layers(const std::vector<std::string>& layers, const std::vector<std::string>& names) {
    std::map<std::string, RootfsEntry> result;
    for (size_t i = 0; i < layers.size(); ++i)
        apply(result, read_layer(layers[i], i < names.size() ? names[i] : "layer " + std::to_string(i), result));
    return complete_entries(std::move(result));  // with the parents no layer listed
}

ContainerConfig parse_container_config(const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object()) throw RootfsError("container config: not a JSON object");
    const auto string_or = [&](const char* key, const char* otherwise) {
        return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string(otherwise);
    };
    const std::string os = string_or("os", "linux"), arch = string_or("architecture", "amd64");
    if (os != "linux" || arch != "amd64")
        throw RootfsError("container config: the image is for " + os + "/" + arch + ", Kiln runs linux/amd64");
    ContainerConfig config;
    if (!j.contains("config") || !j["config"].is_object()) return config;
    const json& c = j["config"];
    config.entrypoint = strings(c.value("Entrypoint", json()), "Entrypoint");
    config.cmd = config.entrypoint;
    for (auto& word : strings(c.value("Cmd", json()), "Cmd")) config.cmd.push_back(std::move(word));
    config.env = strings(c.value("Env", json()), "Env");
    if (c.contains("WorkingDir") && c["WorkingDir"].is_string()) config.workdir = c["WorkingDir"];
    if (c.contains("User") && c["User"].is_string()) config.user = c["User"];
    if (c.contains("ExposedPorts") && c["ExposedPorts"].is_object())
        for (const auto& [port, ignored] : c["ExposedPorts"].items()) config.exposed.push_back(port);
    if (c.contains("Labels") && c["Labels"].is_object())
        for (const auto& [label, value] : c["Labels"].items())
            if (value.is_string()) config.labels[label] = value;
    return config;
}

}  // namespace kiln::images
