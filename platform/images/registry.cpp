#include "images/registry.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "images/container_image.h"
#include "images/rootfs.h"

namespace kiln::images {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kManifestLimit = 4 << 20;  // a manifest is a few hundred bytes; refuse floods

// libcurl's functions, from libcurl.so.4 loaded at first use (registry.h says why).
struct CurlApi {
    CURL* (*easy_init)();
    CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
    CURLcode (*easy_perform)(CURL*);
    CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
    void (*easy_cleanup)(CURL*);
    const char* (*easy_strerror)(CURLcode);
    curl_slist* (*slist_append)(curl_slist*, const char*);
    void (*slist_free_all)(curl_slist*);
};

template <typename Function>
void resolve(void* library, const char* name, Function& out) {
    void* symbol = ::dlsym(library, name);
    if (symbol == nullptr) throw RegistryError(std::string("libcurl.so.4 has no ") + name);
    static_assert(sizeof(symbol) == sizeof(out));
    std::memcpy(&out, &symbol, sizeof(out));  // object to function pointer, without -Wpedantic's objection
}

CurlApi load_curl() {
    void* library = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr)
        throw RegistryError(std::string("registries need libcurl: ") + ::dlerror() + " (install libcurl4)");
    CurlApi api{};
    resolve(library, "curl_easy_init", api.easy_init);
    resolve(library, "curl_easy_setopt", api.easy_setopt);
    resolve(library, "curl_easy_perform", api.easy_perform);
    resolve(library, "curl_easy_getinfo", api.easy_getinfo);
    resolve(library, "curl_easy_cleanup", api.easy_cleanup);
    resolve(library, "curl_easy_strerror", api.easy_strerror);
    resolve(library, "curl_slist_append", api.slist_append);
    resolve(library, "curl_slist_free_all", api.slist_free_all);
    return api;
}

const CurlApi& curl() {
    static const CurlApi api = load_curl();
    return api;
}

struct EasyDeleter {
    void operator()(CURL* handle) const { curl().easy_cleanup(handle); }
};
struct ListDeleter {
    void operator()(curl_slist* list) const { curl().slist_free_all(list); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;
using HeaderList = std::unique_ptr<curl_slist, ListDeleter>;

struct Request {
    std::string method = "GET", url;
    std::vector<std::string> headers;
    const std::string* body = nullptr;
    uint64_t limit = kManifestLimit;  // the most bytes of answer kept; more is an error
};

struct Response {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
    bool too_large = false;
    uint64_t limit = 0;
    std::string header(const std::string& name) const {
        const auto found = headers.find(name);
        return found == headers.end() ? "" : found->second;
    }
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
    auto& response = *static_cast<Response*>(user);
    if (response.body.size() + size * count > response.limit) {
        response.too_large = true;
        return 0;  // curl ends the transfer
    }
    response.body.append(data, size * count);
    return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
    auto& response = *static_cast<Response*>(user);
    const std::string line(data, size * count);
    const auto colon = line.find(':');
    if (line.rfind("HTTP/", 0) == 0) response.headers.clear();  // a new answer (after a 100 or a redirect)
    if (colon == std::string::npos) return size * count;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const auto start = line.find_first_not_of(" \t", colon + 1);
    const auto end = line.find_last_not_of(" \t\r\n");
    response.headers[name] = start == std::string::npos || end < start ? "" : line.substr(start, end - start + 1);
    return size * count;
}

std::string base64(const std::string& text) {
    std::string out(4 * ((text.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::string url_escape(const std::string& text) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (const char character : text) {
        const auto c = static_cast<unsigned char>(character);
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

// `key="value"` pairs of a WWW-Authenticate challenge, after its scheme.
std::map<std::string, std::string> challenge_parameters(const std::string& challenge) {
    std::map<std::string, std::string> out;
    size_t at = challenge.find(' ');
    while (at != std::string::npos && at < challenge.size()) {
        const auto equals = challenge.find('=', at);
        if (equals == std::string::npos) break;
        std::string key = challenge.substr(at, equals - at);
        key.erase(0, key.find_first_not_of(" ,"));
        std::string value;
        size_t next = equals + 1;
        if (next < challenge.size() && challenge[next] == '"') {
            const auto close = challenge.find('"', next + 1);
            value = challenge.substr(next + 1, close == std::string::npos ? std::string::npos : close - next - 1);
            next = close == std::string::npos ? close : close + 1;
        } else {
            const auto comma = challenge.find(',', next);
            value = challenge.substr(next, comma == std::string::npos ? std::string::npos : comma - next);
            next = comma;
        }
        out[key] = value;
        at = next;
    }
    return out;
}

bool starts_with_word(const std::string& text, const std::string& word) {
    if (text.size() < word.size()) return false;
    for (size_t i = 0; i < word.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(word[i])))
            return false;
    return text.size() == word.size() || text[word.size()] == ' ';
}

std::string short_digest(const std::string& digest) { return digest.substr(0, 19); }

// One registry, HOST[:PORT]: its requests, with the authorization its challenges ask for.
class Registry {
  public:
    Registry(const std::string& host, const RegistryOptions& options) : host_(host), options_(options) {
        const bool insecure =
            std::find(options.insecure.begin(), options.insecure.end(), host) != options.insecure.end();
        base_ = (insecure ? "http://" : "https://") + host;
    }

    const std::string& host() const { return host_; }

    // A request to PATH (or a whole URL), authorized as the registry's challenge asks. A second
    // 401 is a refusal of the credentials.
    Response send(Request request) {
        if (request.url.rfind("http", 0) != 0) request.url = base_ + request.url;
        Response response = perform(request);
        if (response.status == 401) {
            authorize(response.header("www-authenticate"), request);
            response = perform(request);
            if (response.status == 401) throw refused();
        }
        return response;
    }

  private:
    RegistryError refused() const {
        if (!options_.credentials)
            return RegistryError(host_ + ": authentication required and no credentials (kiln login " + host_ + ")");
        return RegistryError(host_ + ": authentication failed for " + options_.credentials->username + " (kiln login " +
                             host_ + ")");
    }

    void authorize(const std::string& challenge, const Request& request) {
        if (starts_with_word(challenge, "Basic")) {
            if (!options_.credentials) throw refused();
            authorization_ = "Basic " + base64(options_.credentials->username + ":" + options_.credentials->password);
        } else if (starts_with_word(challenge, "Bearer")) {
            authorization_ = "Bearer " + bearer_token(challenge_parameters(challenge));
        } else {
            throw RegistryError(host_ + ": " + request.method + " " + request.url +
                                " answered 401 with an authentication scheme kiln does not know: '" + challenge + "'");
        }
    }

    // A token from the challenge's realm, asked with the credentials if there are any.
    std::string bearer_token(const std::map<std::string, std::string>& parameters) {
        const auto realm = parameters.find("realm");
        if (realm == parameters.end()) throw RegistryError(host_ + ": a Bearer challenge without a realm");
        std::string url = realm->second;
        char separator = url.find('?') == std::string::npos ? '?' : '&';
        for (const char* key : {"service", "scope"})
            if (const auto found = parameters.find(key); found != parameters.end()) {
                url += separator + std::string(key) + "=" + url_escape(found->second);
                separator = '&';
            }
        const std::string saved = authorization_;
        authorization_ = options_.credentials
                             ? "Basic " + base64(options_.credentials->username + ":" + options_.credentials->password)
                             : "";
        Request token_request;
        token_request.url = url;
        const Response answer = perform(token_request);
        authorization_ = saved;
        if (answer.status == 401 || answer.status == 403) throw refused();
        if (answer.status != 200)
            throw RegistryError(host_ + ": the token service " + realm->second + " answered " +
                                std::to_string(answer.status));
        const json token = json::parse(answer.body, nullptr, false);
        if (token.is_object())
            for (const char* key : {"token", "access_token"})
                if (token.contains(key) && token[key].is_string()) return token[key];
        throw RegistryError(host_ + ": the token service " + realm->second + " answered no token");
    }

    Response perform(const Request& request) const {
        const CurlApi& api = curl();
        Easy easy(api.easy_init());
        if (!easy) throw RegistryError(host_ + ": curl_easy_init failed");
        CURL* h = easy.get();
        Response response;
        response.limit = request.limit;
        std::vector<std::string> headers = request.headers;
        if (!authorization_.empty()) headers.push_back("Authorization: " + authorization_);
        headers.emplace_back("Expect:");  // no 100-continue round trip before a blob
        HeaderList list;
        for (const auto& header : headers) {
            curl_slist* appended = api.slist_append(list.get(), header.c_str());
            if (appended == nullptr) throw RegistryError("curl_slist_append failed");
            (void)list.release();
            list.reset(appended);
        }
        char error[CURL_ERROR_SIZE] = {};
        api.easy_setopt(h, CURLOPT_URL, request.url.c_str());
        api.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        api.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        api.easy_setopt(h, CURLOPT_ERRORBUFFER, error);
        api.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        api.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        api.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, options_.stall_timeout_s);
        api.easy_setopt(h, CURLOPT_HTTPHEADER, list.get());
        api.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        api.easy_setopt(h, CURLOPT_WRITEDATA, &response);
        api.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        api.easy_setopt(h, CURLOPT_HEADERDATA, &response);
        // Blobs may be served from elsewhere (a registry's storage redirects); curl does not
        // carry the Authorization header to another host.
        api.easy_setopt(h, CURLOPT_FOLLOWLOCATION, request.method == "GET" ? 1L : 0L);
        if (!options_.ca_file.empty()) {
            // The system's CAs stay trusted through their directory; the file adds one.
            api.easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
            api.easy_setopt(h, CURLOPT_CAPATH, "/etc/ssl/certs");
        }
        if (request.method == "HEAD") {
            api.easy_setopt(h, CURLOPT_NOBODY, 1L);
        } else if (request.method != "GET") {
            static const std::string empty;
            const std::string& body = request.body ? *request.body : empty;
            api.easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
            api.easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
            api.easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        }
        const CURLcode code = api.easy_perform(h);
        if (response.too_large)
            throw RegistryError(host_ + ": " + request.method + " " + request.url + " answered more than " +
                                std::to_string(request.limit) + " bytes");
        if (code != CURLE_OK) throw transfer_error(code, error, request);
        api.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
        return response;
    }

    RegistryError transfer_error(CURLcode code, const char* error, const Request& request) const {
        const std::string why = error[0] != '\0' ? error : curl().easy_strerror(code);
        if (code == CURLE_PEER_FAILED_VERIFICATION)
            return RegistryError(host_ + ": its TLS certificate is not trusted (" + why +
                                 "); give its CA with --registry-ca FILE or KILN_REGISTRY_CA");
        if (code == CURLE_SSL_CACERT_BADFILE)
            return RegistryError(host_ + ": the CA file " + options_.ca_file + " cannot be used (" + why + ")");
        if (code == CURLE_SSL_CONNECT_ERROR)
            return RegistryError(host_ + ": the TLS handshake failed (" + why +
                                 "); a registry on plain HTTP needs --insecure-registry " + host_);
        if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
            return RegistryError(host_ + ": cannot connect (" + why + ")");
        return RegistryError(host_ + ": " + request.method + " " + request.url + ": " + why);
    }

    std::string host_, base_, authorization_;
    const RegistryOptions& options_;
};

RegistryError unexpected(const Registry& registry, const std::string& what, const Response& response) {
    std::string detail = response.body.substr(0, 300);
    const json body = json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("errors") && body["errors"].is_array() && !body["errors"].empty() &&
        body["errors"][0].is_object())
        if (const json& first = body["errors"][0]; first.contains("message") && first["message"].is_string())
            detail = first["message"];
    return RegistryError(registry.host() + ": " + what + " answered " + std::to_string(response.status) +
                         (detail.empty() ? "" : ": " + detail));
}

std::string blob_url(const RegistryReference& reference, const std::string& digest) {
    return "/v2/" + reference.repository + "/blobs/" + digest;
}

std::string part_name(const Descriptor& descriptor) {
    if (!descriptor.title.empty()) return descriptor.title;
    if (descriptor.media_type == kKilnConfigType) return "config";
    return descriptor.media_type;
}

void report(const RegistryOptions& options, const std::string& line) {
    if (options.progress) options.progress(line);
}

// POST then a monolithic PUT ?digest= (the distribution API's simplest upload), unless the
// registry has the blob already.
uint64_t upload(Registry& registry, const RegistryReference& reference, const Descriptor& descriptor,
                const std::string& bytes, const RegistryOptions& options) {
    const std::string prefix = reference.str() + ": " + part_name(descriptor) + " " + short_digest(descriptor.digest);
    Request head;
    head.method = "HEAD";
    head.url = blob_url(reference, descriptor.digest);
    if (registry.send(head).status == 200) {
        report(options, prefix + ": already in the registry");
        return 0;
    }
    Request start;
    start.method = "POST";
    start.url = "/v2/" + reference.repository + "/blobs/uploads/";
    const Response started = registry.send(start);
    const std::string location = started.header("location");  // a path, or a whole URL
    if (started.status != 202 || location.empty())
        throw unexpected(registry, "starting the upload of " + descriptor.digest, started);
    Request put;
    put.method = "PUT";
    put.url =
        location + (location.find('?') == std::string::npos ? "?" : "&") + "digest=" + url_escape(descriptor.digest);
    put.headers = {"Content-Type: application/octet-stream"};
    put.body = &bytes;
    const Response stored = registry.send(put);
    if (stored.status != 201) throw unexpected(registry, "uploading " + descriptor.digest, stored);
    report(options, prefix + ": pushed " + std::to_string(bytes.size()) + " bytes");
    return bytes.size();
}

// GETs a blob and checks it against its descriptor: the digest and the size.
std::string download(Registry& registry, const RegistryReference& reference, const Descriptor& descriptor,
                     const RegistryOptions& options) {
    Request get;
    get.url = blob_url(reference, descriptor.digest);
    get.limit = descriptor.size;
    const Response response = registry.send(get);
    if (response.status == 404)
        throw RegistryError(reference.str() + ": blob " + descriptor.digest + " not found at " + registry.host());
    if (response.status != 200) throw unexpected(registry, "GET of blob " + descriptor.digest, response);
    const std::string actual = sha256_digest(response.body);
    if (actual != descriptor.digest)
        throw RegistryError(reference.str() + ": blob " + descriptor.digest + " from " + registry.host() +
                            " has the digest " + actual + " (damaged or tampered with); nothing was stored");
    report(options, reference.str() + ": " + part_name(descriptor) + " " + short_digest(descriptor.digest) +
                        ": downloaded " + std::to_string(response.body.size()) + " bytes");
    return response.body;
}

std::string read_blob(const ImageStore& store, const std::string& digest) {
    std::ifstream in(store.blob_path(digest), std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) throw StoreError("blob " + digest + " cannot be read from the local store");
    return bytes.str();
}

// The manifest of `reference`, checked against its digest (the reference's, else the one the
// registry names). Returns its bytes and its digest.
std::pair<std::string, std::string> fetch_manifest(Registry& registry, const RegistryReference& reference) {
    Request get;
    get.url = "/v2/" + reference.repository + "/manifests/" + reference.target();
    get.headers = {"Accept: " + std::string(kOciManifestType) + ", " + kDockerManifestType + ", " + kOciIndexType +
                   ", " + kDockerListType};
    const Response response = registry.send(get);
    if (response.status == 404)
        throw RegistryError(reference.repository + (reference.digest.empty() ? ":" : "@") + reference.target() +
                            " not found at " + registry.host());
    if (response.status != 200) throw unexpected(registry, "GET of the manifest of " + reference.str(), response);
    const std::string actual = sha256_digest(response.body);
    const std::string expected = reference.digest.empty() ? response.header("docker-content-digest") : reference.digest;
    if (!expected.empty() && expected != actual)
        throw RegistryError(reference.str() + ": the manifest from " + registry.host() + " has the digest " + actual +
                            ", not " + expected + " (damaged or tampered with); nothing was stored");
    return {response.body, actual};
}

// A container image as a Kiln image: its layers unpacked into the rootfs, its config's command
// and environment, this machine's kernel. The Kiln manifest records the registry's manifest
// digest, so that pulling it again finds it here and downloads nothing.
PullResult pull_container(ImageStore& store, Registry& registry, const RegistryReference& reference,
                          const OciManifest& manifest, const std::string& digest, const RegistryOptions& options) {
    PullResult result;
    result.manifest_digest = digest;
    if (auto here = store.find(reference.str()); here && here->manifest.value("container_manifest", "") == digest) {
        report(options, reference.str() + ": up to date");
        result.image = *here;
        return result;
    }
    if (options.kernel_path.empty())
        throw RegistryError(reference.str() + ": a container image needs the Kiln kernel to run on (KILN_KERNEL)");
    const std::string config_text = download(registry, reference, manifest.config, options);
    const ContainerConfig config = parse_container_config(config_text);
    std::vector<std::string> layers, names;
    for (const Descriptor& layer : manifest.layers) {
        if (layer.media_type.find("tar") == std::string::npos)
            throw RegistryError(reference.str() + ": layer " + layer.digest + " is " + layer.media_type +
                                ", not a tarball");
        layers.push_back(download(registry, reference, layer, options));
        names.push_back(reference.str() + " layer " + short_digest(layer.digest));
    }
    result.downloaded += config_text.size();
    for (const auto& bytes : layers) result.downloaded += bytes.size();
    const std::vector<RootfsEntry> entries = unpack_layers(layers, names);
    const std::string cpio = write_cpio(entries);
    const std::string kernel = read_file_bytes(options.kernel_path);
    json kiln;
    kiln["kernel"] = {{"digest", sha256_digest(kernel)}, {"size", kernel.size()}};
    kiln["rootfs"] = {{"digest", sha256_digest(cpio)}, {"size", cpio.size()}, {"files", entries.size()}};
    kiln["cmd"] = config.cmd;
    if (!config.entrypoint.empty()) kiln["entrypoint"] = config.entrypoint;
    kiln["env"] = config.env;
    if (!config.workdir.empty() && config.workdir != "/") kiln["workdir"] = config.workdir;
    if (!config.user.empty()) {  // as numbers, from the image's own /etc/passwd and /etc/group
        const auto [uid, gid] = resolve_user(config.user, [&entries](const std::string& path) -> const RootfsEntry* {
            const auto it =
                std::find_if(entries.begin(), entries.end(), [&path](const RootfsEntry& e) { return e.path == path; });
            return it == entries.end() ? nullptr : &*it;
        });
        if (uid != 0 || gid != 0) kiln["user"] = std::to_string(uid) + ":" + std::to_string(gid);
    }
    if (!config.exposed.empty()) kiln["exposed"] = config.exposed;
    if (!config.labels.empty()) kiln["image_labels"] = config.labels;
    kiln["memory_mb"] = image_memory_mb(kiln);
    kiln["labels"] = json::object();
    kiln["kconfig"] = json::object();
    kiln["runtime"] = "kiln";
    kiln["container_manifest"] = digest;
    const std::map<std::string, std::string> blobs{{sha256_digest(kernel), kernel}, {sha256_digest(cpio), cpio}};
    result.image = store.import(reference.str(), kiln.dump(), blobs);
    return result;
}

}  // namespace

RegistryOptions registry_options_from_environment(const std::string& state_dir, const std::string& host) {
    RegistryOptions options;
    if (const char* ca = std::getenv("KILN_REGISTRY_CA"); ca && *ca) options.ca_file = ca;
    if (const char* insecure = std::getenv("KILN_INSECURE_REGISTRIES")) {
        std::stringstream in(insecure);
        for (std::string item; std::getline(in, item, ',');)
            if (!item.empty()) options.insecure.push_back(item);
    }
    options.credentials = load_credentials(state_dir, host);
    return options;
}

std::optional<Credentials> load_credentials(const std::string& state_dir, const std::string& host) {
    const std::string path = (fs::path(state_dir) / "registries.json").string();
    std::ifstream in(path);
    if (!in) return std::nullopt;
    const json all = json::parse(in, nullptr, false);
    if (!all.is_object() || !all.contains(host) || !all[host].is_object()) return std::nullopt;
    const json& entry = all[host];
    if (!entry.contains("username") || !entry["username"].is_string() || !entry.contains("password") ||
        !entry["password"].is_string())
        return std::nullopt;
    return Credentials{entry["username"], entry["password"]};
}

namespace {

nlohmann::json read_credentials_file(const std::string& path) {
    json all = json::object();
    if (std::ifstream in(path); in) {
        all = json::parse(in, nullptr, false);
        if (!all.is_object()) all = json::object();
    }
    return all;
}

// Written whole and private from the start: a temporary file made 0600, then renamed.
void write_credentials_file(const std::string& state_dir, const std::string& path, const json& all) {
    const std::string text = all.dump(2) + "\n";
    std::error_code error;
    fs::create_directories(state_dir, error);
    const std::string temporary = path + ".tmp" + std::to_string(::getpid());
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw RegistryError(temporary + ": " + std::strerror(errno));
    const bool written = ::fchmod(fd, 0600) == 0 &&
                         ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    const std::string why = std::strerror(errno);
    ::close(fd);
    if (!written || ::rename(temporary.c_str(), path.c_str()) != 0) {
        ::unlink(temporary.c_str());
        throw RegistryError(path + ": " + why);
    }
}

}  // namespace

void save_credentials(const std::string& state_dir, const std::string& host, const Credentials& credentials) {
    const std::string path = (fs::path(state_dir) / "registries.json").string();
    json all = read_credentials_file(path);
    all[host] = {{"username", credentials.username}, {"password", credentials.password}};
    write_credentials_file(state_dir, path, all);
}

bool remove_credentials(const std::string& state_dir, const std::string& host) {
    const std::string path = (fs::path(state_dir) / "registries.json").string();
    json all = read_credentials_file(path);
    if (!all.contains(host)) return false;
    all.erase(host);
    write_credentials_file(state_dir, path, all);
    return true;
}

void check_login(const std::string& host, const RegistryOptions& options) {
    Registry registry(host, options);
    Request get;
    get.url = "/v2/";
    const Response response = registry.send(get);
    if (response.status != 200) throw unexpected(registry, "GET /v2/", response);
}

std::string push_image(const ImageStore& store, const Image& image, const RegistryReference& reference,
                       const RegistryOptions& options) {
    Registry registry(reference.host, options);
    const std::string kiln_manifest = read_blob(store, image.digest);
    const std::string manifest = oci_manifest_for(image, kiln_manifest);
    const OciManifest parsed = parse_oci_manifest(manifest);
    for (const Descriptor& layer : parsed.layers)
        upload(registry, reference, layer, read_blob(store, layer.digest), options);
    upload(registry, reference, parsed.config, kiln_manifest, options);
    Request put;
    put.method = "PUT";
    put.url = "/v2/" + reference.repository + "/manifests/" + reference.target();
    put.headers = {"Content-Type: " + std::string(kOciManifestType)};
    put.body = &manifest;
    const Response stored = registry.send(put);
    if (stored.status != 201) throw unexpected(registry, "PUT of the manifest of " + reference.str(), stored);
    return sha256_digest(manifest);
}

PullResult pull_image(ImageStore& store, const RegistryReference& reference, const RegistryOptions& options) {
    Registry registry(reference.host, options);
    PullResult result;
    const auto [text, digest] = fetch_manifest(registry, reference);
    result.manifest_digest = digest;
    OciManifest manifest = parse_oci_manifest(text);
    if (manifest.media_type == kOciIndexType || manifest.media_type == kDockerListType) {
        RegistryReference platform = reference;
        platform.tag.clear();
        platform.digest = platform_manifest(text, reference.str());
        manifest = parse_oci_manifest(fetch_manifest(registry, platform).first);
    }
    if (manifest.config.media_type == kOciConfigType || manifest.config.media_type == kDockerConfigType)
        return pull_container(store, registry, reference, manifest, digest, options);
    if (manifest.config.media_type != kKilnConfigType)
        throw RegistryError(reference.str() + " is neither a Kiln image nor a container image: its config is " +
                            manifest.config.media_type);
    // The config is the Kiln manifest; a store that has it has the image's blobs too (an image is
    // stored whole or not at all), so a second pull of the same digest downloads nothing.
    std::string config;
    if (store.has_blob(manifest.config.digest)) {
        config = read_blob(store, manifest.config.digest);
    } else {
        config = download(registry, reference, manifest.config, options);
        result.downloaded += config.size();
    }
    const json kiln = json::parse(config, nullptr, false);
    if (!kiln.is_object()) throw RegistryError(reference.str() + ": its config is not a JSON object");
    std::map<std::string, std::string> blobs;
    for (const char* part : {"kernel", "rootfs"}) {
        if (!kiln.contains(part) || !kiln[part].is_object() || !kiln[part].contains("digest")) continue;
        const json& named = kiln[part]["digest"];
        const auto layer = std::find_if(manifest.layers.begin(), manifest.layers.end(),
                                        [&](const Descriptor& d) { return named.is_string() && d.digest == named; });
        if (layer == manifest.layers.end())
            throw RegistryError(reference.str() + ": its " + part + " " + named.dump() + " is not one of its layers");
        if (store.has_blob(layer->digest)) {
            report(options, reference.str() + ": " + part + " " + short_digest(layer->digest) + ": already here");
            continue;
        }
        blobs[layer->digest] = download(registry, reference, *layer, options);
        result.downloaded += layer->size;
    }
    result.image = store.import(reference.str(), config, blobs);
    return result;
}

}  // namespace kiln::images
