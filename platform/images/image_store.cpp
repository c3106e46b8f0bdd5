#include "images/image_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include "images/dockerfile.h"
#include "images/registry_reference.h"
#include "images/rootfs.h"
#include "store/sqlite.h"

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

constexpr int kDefaultMemoryMb = 64;  // KraftKit's default too

std::string read_file(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw StoreError(what + " " + path + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// The parts of an ELF header that decide whether the Kiln kernel can run it; "" if it can.
// Why the Kiln kernel could not start `bytes` as the image's program, from `entries` (the root
// file system it runs in); empty if it can. A dynamic program needs its PT_INTERP linker there.
std::string unrunnable(const std::string& bytes, const std::vector<RootfsEntry>& entries) {
    if (bytes.size() < 64 || bytes.compare(0, 4,
                                           "\x7f"
                                           "ELF") != 0)
        return "is not an ELF executable";
    if (bytes[4] != 2 || bytes[5] != 1) return "is not a 64-bit little-endian ELF file";
    uint16_t machine, phentsize, phnum;
    uint64_t phoff;
    std::memcpy(&machine, bytes.data() + 18, 2);
    std::memcpy(&phoff, bytes.data() + 32, 8);
    std::memcpy(&phentsize, bytes.data() + 54, 2);
    std::memcpy(&phnum, bytes.data() + 56, 2);
    if (machine != 62) return "is not an x86-64 program";
    if (phentsize < 56 || phoff > bytes.size() || uint64_t{phnum} * phentsize > bytes.size() - phoff)
        return "has a damaged program header table";
    for (uint16_t i = 0; i < phnum; ++i) {
        const char* header = bytes.data() + phoff + uint64_t{i} * phentsize;
        uint32_t type;
        uint64_t offset, size;
        std::memcpy(&type, header, 4);
        std::memcpy(&offset, header + 8, 8);
        std::memcpy(&size, header + 32, 8);
        if (type != 3) continue;  // PT_INTERP
        if (size < 2 || offset > bytes.size() || size > bytes.size() - offset || bytes[offset + size - 1] != '\0')
            return "has a damaged interpreter path (PT_INTERP)";
        const std::string linker(bytes.data() + offset);
        const RootfsEntry* found = find_entry(entries, linker);
        if (found == nullptr || (found->mode & S_IFMT) != S_IFREG)
            return "is a dynamic executable whose linker " + linker +
                   " is not in the rootfs (add its libraries, or link it with -static)";
    }
    return "";
}

// An instance's memory unless it asks: KraftKit's 64 MiB, which leaves room for a root file system
// of up to 16 MiB (the kernel holds it in memory); a larger one is added, in whole 16 MiB, so that
// a 45 MB Python image runs without -m.
int64_t default_memory_mb(const nlohmann::json& manifest) {
    constexpr int64_t kMiB = 1 << 20, kIncluded = 16;
    const int64_t rootfs = manifest.contains("rootfs") ? manifest["rootfs"].value("size", int64_t{0}) : 0;
    const int64_t beyond = std::max<int64_t>(0, (rootfs + kMiB - 1) / kMiB - kIncluded);
    return kDefaultMemoryMb + (beyond + 15) / 16 * 16;
}

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool is_hex(const std::string& text) {
    return !text.empty() && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The program a command names, as the kernel finds it (kernel/linux/program_loader.h): a path,
// a relative one from the working directory, or a bare name in the usual bin directories.
const RootfsEntry* find_program(const std::vector<RootfsEntry>& entries, const std::string& name,
                                const std::string& workdir) {
    if (name.find('/') != std::string::npos)
        return find_entry(entries, (fs::path(workdir) / name).lexically_normal().string());
    for (const char* dir : {"/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"})
        if (const RootfsEntry* found = find_entry(entries, dir + name)) return found;
    return nullptr;
}

}  // namespace

int64_t image_memory_mb(const nlohmann::json& manifest) { return default_memory_mb(manifest); }

std::string sha256_digest(const std::string& bytes) {
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), hash, &length, EVP_sha256(), nullptr) != 1)
        throw StoreError("sha256 failed");
    static const char* digits = "0123456789abcdef";
    std::string out = "sha256:";
    for (unsigned i = 0; i < length; ++i) {
        out += digits[hash[i] >> 4];
        out += digits[hash[i] & 15];
    }
    return out;
}

std::pair<std::string, std::string> parse_reference(const std::string& reference) {
    if (const auto at = reference.find('@'); at != std::string::npos) {
        const std::string name = reference.substr(0, at), digest = reference.substr(at + 1);
        if (!valid_registry_name(name))
            throw StoreError("'" + reference + "': '" + name + "' is not a valid HOST[:PORT]/REPO");
        if (!valid_digest(digest)) throw StoreError("'" + reference + "': '" + digest + "' is not a sha256 digest");
        return {name, "@" + digest};
    }
    // A colon before the last '/' is a registry's port, not a tag's.
    const auto colon = reference.rfind(':'), slash = reference.rfind('/');
    const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
    std::string name = tagged ? reference.substr(0, colon) : reference;
    std::string tag = tagged ? reference.substr(colon + 1) : "latest";
    if (!valid_name(name) && !valid_registry_name(name))
        throw StoreError("'" + reference + "': '" + name + "' is not a valid image name");
    if (!valid_name(tag)) throw StoreError("'" + reference + "': '" + tag + "' is not a valid tag");
    return {name, tag};
}

ImageStore::ImageStore(const std::string& state_dir) : state_dir_(state_dir) {
    blob_dir_ = (fs::path(state_dir) / "images" / "sha256").string();
    std::error_code error;
    fs::create_directories(blob_dir_, error);
    if (error) throw StoreError("image store " + blob_dir_ + ": " + error.message());
    try {
        db_ = std::make_unique<store::Database>((fs::path(state_dir) / "kiln.db").string());
        db_->exec(
            "CREATE TABLE IF NOT EXISTS image_tags (name TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, "
            "created_ns INTEGER NOT NULL, PRIMARY KEY (name, tag))");
        db_->exec("CREATE TABLE IF NOT EXISTS rootfs_builds (key TEXT PRIMARY KEY, record TEXT NOT NULL)");
    } catch (const store::DatabaseError& e) {
        throw StoreError(std::string("image store: ") + e.what());
    }
}

ImageStore::~ImageStore() = default;

std::string ImageStore::blob_path(const std::string& digest) const {
    return (fs::path(blob_dir_) / digest.substr(digest.find(':') + 1)).string();
}

std::string ImageStore::put_blob(const std::string& bytes) {
    const std::string digest = sha256_digest(bytes);
    const std::string path = blob_path(digest);
    std::error_code error;
    if (fs::exists(path, error)) return digest;  // content-addressed: already there is the same
    const std::string temporary = path + ".tmp" + std::to_string(::getpid());
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw StoreError("image store " + temporary + ": " + std::strerror(errno));
    size_t written = 0;
    while (written < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = std::strerror(errno);
            ::close(fd);
            ::unlink(temporary.c_str());
            throw StoreError("image store " + temporary + ": " + why);
        }
        written += static_cast<size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced || ::rename(temporary.c_str(), path.c_str()) != 0) {
        ::unlink(temporary.c_str());
        throw StoreError("image store " + path + ": " + std::strerror(errno));
    }
    return digest;
}

Image ImageStore::build(const Kraftfile& kraftfile, const std::string& kernel_path, const std::string& reference,
                        const std::map<std::string, std::string>& build_args) {
    const auto [name, tag] = parse_reference(reference.empty() ? kraftfile.name : reference);
    const std::string kernel = read_file(kernel_path, "kernel");
    if (kernel.size() < 4 || kernel.compare(0, 4,
                                            "\x7f"
                                            "ELF") != 0)
        throw StoreError("kernel " + kernel_path + ": not an ELF file");

    nlohmann::json manifest;
    manifest["kernel"] = {{"digest", put_blob(kernel)}, {"size", kernel.size()}};
    // The Kraftfile's cmd and env, over what a Dockerfile rootfs says (ENTRYPOINT and CMD, ENV).
    std::vector<std::string> cmd = kraftfile.cmd;
    std::vector<std::pair<std::string, std::string>> env_list;
    if (kraftfile.rootfs) {
        // A Dockerfile's build is remembered by the content it was made of: an unchanged rebuild
        // hashes its context and reuses the archive.
        std::string key;
        nlohmann::json part;
        if (is_dockerfile_name(*kraftfile.rootfs)) {
            key = dockerfile_build_key(kraftfile, build_args);
            part = remembered_rootfs(key);
        }
        if (part.is_null()) {
            part = build_rootfs(kraftfile, build_args);
            if (!key.empty()) remember_rootfs(key, part);
        }
        manifest["rootfs"] = part["rootfs"];
        cmd = part["cmd"].get<std::vector<std::string>>();
        env_list = part["env"].get<std::vector<std::pair<std::string, std::string>>>();
        for (const char* field : {"exposed", "workdir", "user", "entrypoint", "image_labels"})
            if (part.contains(field)) manifest[field] = part[field];
    } else if (!cmd.empty()) {
        throw KraftfileError(kraftfile.path + ": cmd: the image has no rootfs to run " + cmd[0] + " from");
    }
    manifest["cmd"] = cmd;
    for (const auto& [variable, value] : kraftfile.env) {
        const std::string& env_name = variable;  // clang 14 cannot capture a structured binding (P1091)
        auto it = std::find_if(env_list.begin(), env_list.end(), [&](const auto& e) { return e.first == env_name; });
        if (it != env_list.end())
            it->second = value;
        else
            env_list.emplace_back(variable, value);
    }
    nlohmann::json env = nlohmann::json::array();
    for (const auto& [variable, value] : env_list) env.push_back(variable + "=" + value);
    manifest["env"] = env;
    manifest["memory_mb"] = default_memory_mb(manifest);
    manifest["labels"] = kraftfile.labels;
    manifest["kconfig"] = kraftfile.kconfig;
    manifest["runtime"] = "kiln";
    if (!kraftfile.platforms.empty()) manifest["platforms"] = kraftfile.platforms;
    const std::string digest = put_blob(manifest.dump());
    return this->tag(name, tag, digest, manifest);
}

std::optional<Image> ImageStore::base_image(const std::string& reference) {
    auto image = find(reference);
    if (!image && puller_ && is_registry_reference(reference)) {
        puller_(*this, reference);
        image = find(reference);
    }
    return image;
}

// A FROM's image as the Dockerfile builder starts a stage from it: its rootfs's files and its
// configuration. The manifest's cmd is the whole command; its entrypoint (a Dockerfile's
// ENTRYPOINT, a container image's Entrypoint) the part a later CMD keeps.
BaseImage ImageStore::base(const std::string& reference) {
    const auto image = base_image(reference);
    if (!image)
        throw StoreError("no image '" + reference + "' here" +
                         (is_registry_reference(reference) ? "" : " (a registry's is named HOST[:PORT]/REPO:TAG)"));
    const nlohmann::json& m = image->manifest;
    BaseImage out;
    if (m.contains("rootfs")) out.entries = read_rootfs(blob_path(m["rootfs"]["digest"].get<std::string>()));
    for (const auto& item : m.value("env", nlohmann::json::array())) {
        const std::string text = item.get<std::string>();
        const size_t equals = text.find('=');
        out.config.env.emplace_back(text.substr(0, equals), equals == std::string::npos ? "" : text.substr(equals + 1));
    }
    out.config.entrypoint = m.value("entrypoint", std::vector<std::string>{});
    out.config.cmd = m.value("cmd", std::vector<std::string>{});
    auto& entrypoint = out.config.entrypoint;
    if (out.config.cmd.size() >= entrypoint.size() &&
        std::equal(entrypoint.begin(), entrypoint.end(), out.config.cmd.begin()))
        out.config.cmd.erase(out.config.cmd.begin(),
                             out.config.cmd.begin() + static_cast<std::ptrdiff_t>(entrypoint.size()));
    else
        entrypoint.clear();  // a Kraftfile's cmd replaced it
    out.config.workdir = m.value("workdir", std::string("/"));
    out.config.user = m.value("user", std::string());
    out.config.exposed = m.value("exposed", std::vector<std::string>{});
    out.config.labels = m.value("image_labels", std::map<std::string, std::string>{});
    return out;
}

nlohmann::json ImageStore::build_rootfs(const Kraftfile& kraftfile,
                                        const std::map<std::string, std::string>& build_args) {
    nlohmann::json part;
    std::vector<std::string> cmd = kraftfile.cmd;
    std::vector<std::pair<std::string, std::string>> env_list;
    std::vector<RootfsEntry> entries;
    if (is_dockerfile_name(*kraftfile.rootfs)) {
        DockerBuild built = build_dockerfile(*kraftfile.rootfs, fs::path(*kraftfile.rootfs).parent_path().string(),
                                             build_args, BuildSandbox::kBubblewrap,
                                             [this](const std::string& reference) { return base(reference); });
        entries = std::move(built.entries);
        if (cmd.empty()) cmd = built.config.argv();
        env_list = built.config.env;
        if (!built.config.exposed.empty()) part["exposed"] = built.config.exposed;
        if (built.config.workdir != "/") part["workdir"] = built.config.workdir;
        if (!built.config.user.empty()) part["user"] = built.config.user;
        if (!built.config.entrypoint.empty()) part["entrypoint"] = built.config.entrypoint;
        for (const auto& [label, value] : built.config.labels) part["image_labels"][label] = value;
    } else {
        entries = read_rootfs(*kraftfile.rootfs);
    }
    if (!cmd.empty()) {
        const std::string workdir = part.contains("workdir") ? part["workdir"].get<std::string>() : "/";
        const RootfsEntry* program = find_program(entries, cmd[0], workdir);
        const std::string where = kraftfile.path + ": cmd: " + cmd[0];
        if (program == nullptr) throw KraftfileError(where + " is not in the rootfs (" + *kraftfile.rootfs + ")");
        if ((program->mode & S_IFMT) != S_IFREG) throw KraftfileError(where + " is not a file");
        if (const std::string why = unrunnable(program->data, entries); !why.empty())
            throw KraftfileError(where + " " + why);
    }
    const std::string cpio = write_cpio(entries);
    part["rootfs"] = {{"digest", put_blob(cpio)}, {"size", cpio.size()}, {"files", entries.size()}};
    part["cmd"] = cmd;
    part["env"] = env_list;
    return part;
}

// Everything a Dockerfile build depends on: the Dockerfile, every file of its context (paths,
// modes, contents, link targets), the build arguments, and the Kraftfile's cmd (checked against
// the result). Files are hashed through one reused buffer: no fresh memory per byte.
std::string ImageStore::dockerfile_build_key(const Kraftfile& kraftfile,
                                             const std::map<std::string, std::string>& build_args) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) throw StoreError("sha256 failed");
    auto add = [&](const std::string& text) {
        const uint64_t size = text.size();
        EVP_DigestUpdate(ctx.get(), &size, sizeof(size));
        EVP_DigestUpdate(ctx.get(), text.data(), text.size());
    };
    add("kiln dockerfile build 1");
    add(*kraftfile.rootfs);
    // The images its FROMs name, by what they are now: a base built or pulled again builds again.
    for (const std::string& reference : dockerfile_base_images(*kraftfile.rootfs, build_args)) {
        const auto image = base_image(reference);
        add(reference + " " + (image ? image->digest : std::string("absent")));
    }
    for (const auto& [name, value] : build_args) add(name + "=" + value);
    add("--");
    for (const std::string& word : kraftfile.cmd) add(word);
    add("--");
    const fs::path context = fs::path(*kraftfile.rootfs).parent_path();
    const ContextFilter filter(context.string());  // what the build does not see does not count
    std::vector<fs::path> paths;
    std::error_code error;
    for (fs::recursive_directory_iterator it(context, error), end; !error && it != end; it.increment(error)) {
        if (!filter.excluded(it->path().lexically_relative(context).string())) {
            paths.push_back(it->path());
        } else if (!filter.has_exceptions() && it->is_directory(error)) {
            it.disable_recursion_pending();  // nothing below it can count either
        }
    }
    if (error) throw KraftfileError(context.string() + ": " + error.message());
    std::sort(paths.begin(), paths.end());
    std::vector<char> buffer(1 << 20);
    for (const fs::path& path : paths) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) throw KraftfileError(path.string() + ": cannot stat it");
        add(path.lexically_relative(context).string());
        add(std::to_string(st.st_mode));
        if (S_ISLNK(st.st_mode)) {
            add(fs::read_symlink(path, error).string());
        } else if (S_ISREG(st.st_mode)) {
            const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) throw KraftfileError(path.string() + ": cannot read it");
            ssize_t n;
            uint64_t total = 0;
            while ((n = ::read(fd, buffer.data(), buffer.size())) > 0) {
                EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
                total += static_cast<uint64_t>(n);
            }
            ::close(fd);
            if (n < 0) throw KraftfileError(path.string() + ": cannot read it");
            add(std::to_string(total));
        }
    }
    unsigned char hash[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx.get(), hash, &length) != 1) throw StoreError("sha256 failed");
    std::string key;
    static const char* digits = "0123456789abcdef";
    for (unsigned i = 0; i < length; ++i) {
        key += digits[hash[i] >> 4];
        key += digits[hash[i] & 15];
    }
    return key;
}

nlohmann::json ImageStore::remembered_rootfs(const std::string& key) const {
    store::Statement select(*db_, "SELECT record FROM rootfs_builds WHERE key = ?");
    select.bind(1, key);
    if (!select.step()) return nullptr;
    nlohmann::json part = nlohmann::json::parse(select.text(0), nullptr, false);
    // A record that does not read back, or whose archive was removed since, is built again.
    if (!part.is_object() || !part.contains("rootfs") || !part["rootfs"].contains("digest") ||
        !part["rootfs"]["digest"].is_string() || !part.contains("cmd") || !part.contains("env"))
        return nullptr;
    std::error_code error;
    if (!fs::exists(blob_path(part["rootfs"]["digest"].get<std::string>()), error)) return nullptr;
    return part;
}

void ImageStore::remember_rootfs(const std::string& key, const nlohmann::json& part) {
    store::Statement(*db_, "INSERT OR REPLACE INTO rootfs_builds (key, record) VALUES (?, ?)")
        .bind(1, key)
        .bind(2, part.dump())
        .step();
}

Image ImageStore::tag(const std::string& name, const std::string& tag, const std::string& digest,
                      const nlohmann::json& manifest) {
    Image image{name, tag, digest, now_ns(), manifest};
    store::Statement(*db_,
                     "INSERT INTO image_tags (name, tag, digest, created_ns) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (name, tag) DO UPDATE SET digest = excluded.digest, created_ns = excluded.created_ns")
        .bind(1, name)
        .bind(2, tag)
        .bind(3, digest)
        .bind(4, image.created_ns)
        .step();
    collect_garbage();  // the image this name had before may be unused now
    return image;
}

bool ImageStore::has_blob(const std::string& digest) const {
    std::error_code error;
    return digest.rfind("sha256:", 0) == 0 && digest.size() == 71 && fs::exists(blob_path(digest), error);
}

Image ImageStore::import(const std::string& reference, const std::string& manifest_text,
                         const std::map<std::string, std::string>& blobs) {
    const auto [name, tag] = parse_reference(reference);
    for (const auto& [digest, bytes] : blobs)
        if (sha256_digest(bytes) != digest) throw StoreError("blob " + digest + ": its bytes have another digest");
    nlohmann::json manifest = nlohmann::json::parse(manifest_text, nullptr, false);
    if (!manifest.is_object() || !manifest.contains("kernel") || !manifest["kernel"].is_object() ||
        !manifest["kernel"].value("digest", nlohmann::json()).is_string())
        throw StoreError("the image manifest is not a Kiln manifest (no kernel digest)");
    for (const char* part : {"kernel", "rootfs"}) {
        if (!manifest.contains(part)) continue;
        const auto digest = manifest[part].value("digest", std::string());
        if (!blobs.count(digest) && !has_blob(digest))
            throw StoreError(std::string("the image's ") + part + " blob " + digest + " was not sent");
    }
    for (const auto& [digest, bytes] : blobs) put_blob(bytes);
    return this->tag(name, tag, put_blob(manifest_text), manifest);
}

nlohmann::json ImageStore::read_manifest(const std::string& digest) const {
    const std::string text = read_file(blob_path(digest), "image manifest");
    if (sha256_digest(text) != digest) throw StoreError("image manifest " + digest + " is corrupt");
    try {
        return nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        throw StoreError("image manifest " + digest + ": " + e.what());
    }
}

std::vector<Image> ImageStore::list() {
    std::vector<Image> images;
    store::Statement query(*db_, "SELECT name, tag, digest, created_ns FROM image_tags ORDER BY name, tag");
    while (query.step())
        images.push_back({query.text(0), query.text(1), query.text(2), query.integer(3), read_manifest(query.text(2))});
    return images;
}

std::optional<Image> ImageStore::find(const std::string& reference) {
    std::string prefix = reference.rfind("sha256:", 0) == 0 ? reference.substr(7) : reference;
    if (is_hex(prefix) && (prefix.size() >= 6 || reference.rfind("sha256:", 0) == 0)) {
        std::optional<Image> found;
        for (auto& image : list()) {
            if (image.digest.compare(7, prefix.size(), prefix) != 0) continue;
            if (found && found->digest != image.digest)
                throw StoreError("'" + reference + "' matches more than one image; give more digits");
            if (!found) found = std::move(image);
        }
        if (found || reference.rfind("sha256:", 0) == 0) return found;
    }
    const auto [name, tag] = parse_reference(reference);
    store::Statement query(*db_, "SELECT digest, created_ns FROM image_tags WHERE name = ? AND tag = ?");
    query.bind(1, name).bind(2, tag);
    if (!query.step()) return std::nullopt;
    return Image{name, tag, query.text(0), query.integer(1), read_manifest(query.text(0))};
}

std::vector<std::string> ImageStore::remove(const std::string& reference) {
    const auto image = find(reference);
    if (!image) throw StoreError("no image '" + reference + "'");
    std::vector<std::string> removed;
    const bool by_digest = reference.find(':') == std::string::npos ? is_hex(reference) && reference.size() >= 6
                                                                    : reference.rfind("sha256:", 0) == 0;
    if (by_digest) {
        for (const auto& other : list())
            if (other.digest == image->digest) removed.push_back(other.reference());
        store::Statement(*db_, "DELETE FROM image_tags WHERE digest = ?").bind(1, image->digest).step();
    } else {
        removed.push_back(image->reference());
        store::Statement(*db_, "DELETE FROM image_tags WHERE name = ? AND tag = ?")
            .bind(1, image->name)
            .bind(2, image->tag)
            .step();
    }
    collect_garbage();
    return removed;
}

// Deletes every blob no named image uses (and stray temporary files of interrupted writes).
void ImageStore::collect_garbage() {
    std::set<std::string> used;
    for (const auto& image : list()) {
        used.insert(image.digest.substr(7));
        for (const char* part : {"kernel", "rootfs"})
            if (image.manifest.contains(part)) used.insert(image.manifest[part]["digest"].get<std::string>().substr(7));
    }
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(blob_dir_, error)) {
        const std::string file = entry.path().filename().string();
        const bool temporary = file.find(".tmp") != std::string::npos;
        if (temporary) {
            // Only our own: another process may be writing its own temporary file right now.
            if (file.substr(file.find(".tmp") + 4) != std::to_string(::getpid())) continue;
        } else if (used.count(file)) {
            continue;
        }
        fs::remove(entry.path(), error);
    }
}

std::string default_kernel_path() {
    if (const char* path = std::getenv("KILN_KERNEL"); path && *path) return path;
    std::error_code error;
    const fs::path bin = fs::read_symlink("/proc/self/exe", error).parent_path();
    const fs::path candidates[] = {bin / ".." / "kernel" / "kiln.elf", bin / ".." / "lib" / "kiln" / "kiln.elf"};
    for (const auto& candidate : candidates)
        if (fs::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
    throw std::runtime_error("no Kiln kernel at " + candidates[0].lexically_normal().string() + " or " +
                             candidates[1].lexically_normal().string() + " (set KILN_KERNEL)");
}

}  // namespace kiln::images
