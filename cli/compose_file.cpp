#include "compose_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "images/kraftfile.h"
#include "instances/limits.h"
namespace kiln::cli {
namespace fs = std::filesystem;

namespace {

constexpr const char* kServiceKeys =
    "image, build, command, environment, ports, mem_limit, cpu_shares, pids_limit, depends_on, restart, volumes";

// A service as read, with the lines of its dependencies: they are checked once every service is
// known, and an error must still point at them.
struct Entry {
    ComposeService service;
    std::vector<int> depends_lines;
    std::vector<int> volume_lines;  // of each of its volumes, checked against the top-level ones
};

bool is_extension(const std::string& key) { return key.rfind("x-", 0) == 0; }

std::string key_text(const YAML::Node& key) { return key.IsScalar() ? key.Scalar() : ""; }

bool valid_env_name(const std::string& name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// "8080" -> 8080; 0 for anything that is not a port number.
int port_number(const std::string& text) {
    if (text.empty() || text.size() > 5) return 0;
    if (!std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
        return 0;
    const int port = std::stoi(text);
    return port <= 65535 ? port : 0;
}

// What to say about a key Kiln does not read, at the top level or in a service.
std::string unsupported(const std::string& key, const std::string& known) {
    if (key == "networks")
        return "every instance is on Kiln's private network, where services reach each other as <service>.internal "
               "(remove 'networks')";
    return "unknown key; Kiln reads " + known;
}

class Parser {
  public:
    explicit Parser(std::string path) : path_(std::move(path)) {
        dir_ = fs::absolute(fs::path(path_)).parent_path().lexically_normal().string();
    }

    ComposeFile parse(const std::string& text) const {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            fail_line(e.mark.line + 1, "", "not valid YAML: " + e.msg);
        }
        if (!root.IsMap()) fail(root, "", "a compose file is a mapping with 'services'");
        ComposeFile file;
        file.path = path_;
        file.name = fs::path(dir_).filename().string();
        std::vector<Entry> entries;
        std::set<std::string> seen;
        for (const auto& entry : root) {
            const std::string key = key_text(entry.first);
            if (!seen.insert(key).second) fail(entry.first, key, "appears twice");
            if (key == "services") {
                entries = services(entry.first, entry.second);
            } else if (key == "name") {
                file.name = scalar(entry.first, entry.second, key);
            } else if (key == "volumes") {
                file.volumes = top_volumes(entry.first, entry.second);
            } else if (key != "version" && !is_extension(key)) {  // version: obsolete in compose files too
                fail(entry.first, key, unsupported(key, "services, name, version, volumes"));
            }
        }
        if (!seen.count("services")) fail(root, "services", "missing; a compose file lists its services");
        // A service's volume must be one of the file's (docker compose's rule for named volumes).
        for (const auto& e : entries)
            for (size_t i = 0; i < e.service.volumes.size(); ++i) {
                const auto& name = e.service.volumes[i].name;
                if (std::none_of(file.volumes.begin(), file.volumes.end(),
                                 [&](const ComposeVolume& v) { return v.name == name; }))
                    fail_line(e.volume_lines[i], "services." + e.service.name + ".volumes",
                              "'" + name + "' is not in the top-level 'volumes'");
            }
        file.services = in_dependency_order(entries);
        return file;
    }

  private:
    [[noreturn]] void fail(const YAML::Node& at, const std::string& key, const std::string& why) const {
        fail_line(std::max(at.Mark().line + 1, 1), key, why);
    }

    [[noreturn]] void fail_line(int line, const std::string& key, const std::string& why) const {
        std::string text = path_;
        text.append(":").append(std::to_string(line)).append(": ");
        if (!key.empty()) text.append(key).append(": ");
        throw ComposeError(text.append(why));
    }

    static int line_of(const YAML::Node& node) { return std::max(node.Mark().line + 1, 1); }

    std::string scalar(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        if (!value.IsScalar() || value.Scalar().empty()) fail(key, at, "expected a single value");
        return value.Scalar();
    }

    std::vector<Entry> services(const YAML::Node& key, const YAML::Node& value) const {
        if (!value.IsMap() || value.size() == 0)
            fail(key, "services", "expected a mapping of service names to their settings");
        std::vector<Entry> out;
        std::set<std::string> names;
        for (const auto& entry : value) {
            const std::string name = key_text(entry.first);
            if (!images::valid_name(name))
                fail(entry.first, "services",
                     "'" + name + "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
            if (!names.insert(name).second) fail(entry.first, "services." + name, "appears twice");
            out.push_back(service(entry.first, name, entry.second));
        }
        return out;
    }

    Entry service(const YAML::Node& key, const std::string& name, const YAML::Node& value) const {
        const std::string where = "services." + name;
        if (!value.IsMap()) fail(key, where, "expected a mapping of settings (" + std::string(kServiceKeys) + ")");
        Entry entry;
        ComposeService& s = entry.service;
        s.name = name;
        std::set<std::string> seen;
        for (const auto& field : value) {
            const YAML::Node& k = field.first;
            const YAML::Node& v = field.second;
            const std::string f = key_text(k);
            const std::string at = std::string(where).append(".").append(f);
            if (!seen.insert(f).second) fail(k, at, "appears twice");
            if (f == "image") {
                s.image = scalar(k, v, at);
            } else if (f == "build") {
                s.build = build(k, v, at);
            } else if (f == "command") {
                s.command = command(k, v, at);
            } else if (f == "environment") {
                s.environment = environment(k, v, at);
            } else if (f == "ports") {
                s.ports = ports(k, v, at);
            } else if (f == "mem_limit") {
                s.memory_mb = memory(k, v, at);
            } else if (f == "cpu_shares") {
                s.cpu_shares = integer(k, v, at, instances::Limits::kMinCpuShares, instances::Limits::kMaxCpuShares);
            } else if (f == "pids_limit") {
                s.pids_limit = integer(k, v, at, instances::Limits::kMinPidsLimit, instances::Limits::kMaxPidsLimit);
            } else if (f == "depends_on") {
                depends_on(k, v, at, entry);
            } else if (f == "restart") {
                s.restart = restart(k, v, at);
            } else if (f == "volumes") {
                service_volumes(k, v, at, entry);
            } else if (!is_extension(f)) {
                fail(k, at, unsupported(f, kServiceKeys));
            }
        }
        if (s.image.empty() && s.build.empty()) fail(key, where, "give it an image or a build directory");
        return entry;
    }

    // A directory with a Kraftfile, relative to the compose file: `build: DIR` or `build: {context: DIR}`.
    std::string build(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        std::string context;
        if (value.IsMap()) {
            for (const auto& field : value) {
                const std::string name = key_text(field.first);
                if (name == "context")
                    context = scalar(field.first, field.second, at + ".context");
                else if (name == "dockerfile")
                    fail(field.first, at, "Kiln builds the Kraftfile in the context directory, not a Dockerfile");
                else
                    fail(field.first, at, "unknown key '" + name + "'; Kiln reads context");
            }
            if (context.empty()) fail(key, at, "expected 'context: DIR'");
        } else {
            context = scalar(key, value, at);
        }
        fs::path dir = (fs::path(dir_) / context).lexically_normal();
        if (!dir.has_filename()) dir = dir.parent_path();  // "." and "app/" end in a separator
        std::error_code error;
        if (!fs::is_directory(dir, error)) fail(key, at, dir.string() + " is not a directory");
        return dir.string();
    }

    // The top-level `volumes`: NAME: (nothing), NAME: {}, or NAME: {size: 1G, external: true}.
    std::vector<ComposeVolume> top_volumes(const YAML::Node& key, const YAML::Node& value) const {
        if (value.IsNull()) return {};
        if (!value.IsMap()) fail(key, "volumes", "expected a mapping of volume names to their settings");
        std::vector<ComposeVolume> out;
        for (const auto& entry : value) {
            ComposeVolume v;
            v.name = key_text(entry.first);
            const std::string at = "volumes." + v.name;
            if (!images::valid_name(v.name))
                fail(entry.first, "volumes",
                     "'" + v.name + "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
            for (const auto& earlier : out)
                if (earlier.name == v.name) fail(entry.first, at, "appears twice");
            const YAML::Node& settings = entry.second;
            if (!settings.IsNull() && !settings.IsMap()) fail(entry.first, at, "expected a mapping (size, external)");
            if (settings.IsMap())
                for (const auto& field : settings) {
                    const std::string f = key_text(field.first);
                    const std::string where = std::string(at).append(".").append(f);
                    if (f == "size") {
                        try {
                            v.size_mb = volumes::parse_size_mb(scalar(field.first, field.second, where));
                        } catch (const std::invalid_argument& e) {
                            fail(field.first, where, e.what());
                        }
                    } else if (f == "external") {
                        const std::string text = scalar(field.first, field.second, where);
                        if (text != "true" && text != "false") fail(field.first, where, "expected true or false");
                        v.external = text == "true";
                    } else if (f == "driver" || f == "driver_opts") {
                        fail(field.first, where, "a Kiln volume is an ext4 image file on kilnd's host: no drivers");
                    } else if (!is_extension(f)) {
                        fail(field.first, where, "unknown key; Kiln reads size, external");
                    }
                }
            out.push_back(std::move(v));
        }
        return out;
    }

    // A service's `volumes: ["NAME:/path", "NAME:/path:ro"]`: named volumes only.
    void service_volumes(const YAML::Node& key, const YAML::Node& value, const std::string& at, Entry& entry) const {
        if (!value.IsSequence()) fail(key, at, "expected a list of \"NAME:/path[:ro]\"");
        for (const auto& item : value) {
            if (!item.IsScalar()) fail(item, at, "expected \"NAME:/path[:ro]\" (the long syntax is not read)");
            const std::string& text = item.Scalar();
            if (!text.empty() && (text[0] == '.' || text[0] == '/' || text[0] == '~'))
                fail(item, at, "'" + text + "': Kiln mounts named volumes, not host directories");
            try {
                auto spec = volumes::parse_volume_spec(text);
                for (const auto& earlier : entry.service.volumes)
                    if (auto conflict = volumes::mount_conflict(earlier.at, spec.at); !conflict.empty())
                        fail(item, at, conflict);
                entry.service.volumes.push_back(std::move(spec));
                entry.volume_lines.push_back(line_of(item));
            } catch (const std::invalid_argument& e) {
                std::string why = e.what();
                if (why.rfind("-v ", 0) == 0) why = why.substr(3);
                fail(item, at, why);
            }
        }
    }

    std::vector<std::string> command(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        if (value.IsScalar()) {
            try {
                return images::split_command(value.Scalar());  // as a Kraftfile's cmd: quotes group words
            } catch (const std::invalid_argument& e) {
                fail(key, at, e.what());
            }
        }
        if (!value.IsSequence()) fail(key, at, "expected a string or a list of strings");
        std::vector<std::string> out;
        for (const auto& item : value) {
            if (!item.IsScalar()) fail(item, at, "expected a string or a list of strings");
            out.push_back(item.Scalar());
        }
        return out;
    }

    // A list of NAME=VALUE or a mapping. A name without a value (docker compose takes it from its
    // own environment) is refused: what an instance gets should be in the file.
    std::vector<std::string> environment(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        std::vector<std::string> out;
        auto add = [&](const YAML::Node& where, const std::string& name, const std::string& text) {
            if (!valid_env_name(name)) fail(where, at, "'" + name + "' is not a variable name");
            out.push_back(std::string(name).append("=").append(text));
        };
        if (value.IsMap()) {
            for (const auto& entry : value) {
                const std::string name = key_text(entry.first);
                if (!entry.second.IsScalar()) fail(entry.first, at, "give " + name + " a single value");
                add(entry.first, name, entry.second.Scalar());
            }
        } else if (value.IsSequence()) {
            for (const auto& item : value) {
                const std::string text = item.IsScalar() ? item.Scalar() : "";
                const auto equals = text.find('=');
                if (equals == std::string::npos) fail(item, at, "'" + text + "': expected NAME=VALUE");
                add(item, text.substr(0, equals), text.substr(equals + 1));
            }
        } else {
            fail(key, at, "expected a list of NAME=VALUE or a mapping");
        }
        return out;
    }

    std::vector<std::string> ports(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        if (!value.IsSequence()) fail(key, at, "expected a list of \"HOST:GUEST\"");
        std::vector<std::string> out;
        for (const auto& item : value) {
            if (!item.IsScalar()) fail(item, at, "expected \"HOST:GUEST\" or a port number");
            out.push_back(port(item, at));
        }
        return out;
    }

    // "HOST:GUEST", "HOST:GUEST/tcp", or one number for both (there is no port picked at random).
    std::string port(const YAML::Node& item, const std::string& at) const {
        const std::string& text = item.Scalar();
        std::string spec = text;
        if (const auto slash = spec.find('/'); slash != std::string::npos) {
            if (spec.substr(slash + 1) != "tcp") fail(item, at, "'" + text + "': Kiln publishes TCP ports only");
            spec.resize(slash);
        }
        const auto colon = spec.find(':');
        if (colon != std::string::npos && spec.find(':', colon + 1) != std::string::npos)
            fail(item, at, "'" + text + "': Kiln publishes on every host address: give HOST:GUEST");
        const int host = port_number(spec.substr(0, colon));
        const int guest = colon == std::string::npos ? host : port_number(spec.substr(colon + 1));
        if (host == 0 || guest == 0) fail(item, at, "'" + text + "': expected HOST:GUEST, ports 1 to 65535");
        return std::to_string(host).append(":").append(std::to_string(guest));
    }

    int64_t memory(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        try {
            return parse_mem_limit(scalar(key, value, at));
        } catch (const std::invalid_argument& e) {
            fail(key, at, e.what());
        }
    }

    int64_t integer(const YAML::Node& key, const YAML::Node& value, const std::string& at, int64_t low,
                    int64_t high) const {
        const std::string range = "expected a whole number from " + std::to_string(low) + " to " + std::to_string(high);
        if (!value.IsScalar()) fail(key, at, range);
        int64_t number = 0;
        if (!YAML::convert<int64_t>::decode(value, number) || number < low || number > high) fail(key, at, range);
        return number;
    }

    // A list of names, or a mapping of names to {condition: ...}. Kiln starts a service after the
    // ones it depends on without waiting for a condition, so those settings are accepted, not acted on.
    void depends_on(const YAML::Node& key, const YAML::Node& value, const std::string& at, Entry& entry) const {
        auto add = [&](const YAML::Node& where, const std::string& name) {
            entry.service.depends_on.push_back(name);
            entry.depends_lines.push_back(line_of(where));
        };
        if (value.IsSequence()) {
            for (const auto& item : value) {
                if (!item.IsScalar()) fail(item, at, "expected a service's name");
                add(item, item.Scalar());
            }
        } else if (value.IsMap()) {
            for (const auto& dependency : value) {
                if (!dependency.second.IsMap() && !dependency.second.IsNull())
                    fail(dependency.first, at, "expected {condition: ...}");
                for (const auto& field : dependency.second) {
                    const std::string name = key_text(field.first);
                    if (name != "condition" && name != "required" && name != "restart")
                        fail(field.first, at, "unknown key '" + name + "'; Kiln reads condition, required, restart");
                }
                add(dependency.first, key_text(dependency.first));
            }
        } else {
            fail(key, at, "expected a list of service names or a mapping of them to {condition: ...}");
        }
    }

    std::string restart(const YAML::Node& key, const YAML::Node& value, const std::string& at) const {
        const std::string text = scalar(key, value, at);
        if (text == "no") return "never";
        if (text == "on-failure") return "on-failure";
        // kilnd's `always` never restarts what a user stopped: that is unless-stopped.
        if (text == "always" || text == "unless-stopped") return "always";
        fail(key, at, "'" + text + "': expected no, always, on-failure or unless-stopped");
    }

    // Depth first in the file's order, so each service comes after what it depends on and
    // otherwise where the file has it. A dependency met while its own are being placed closes a cycle.
    std::vector<ComposeService> in_dependency_order(const std::vector<Entry>& entries) const {
        std::map<std::string, size_t> index;
        for (size_t i = 0; i < entries.size(); ++i) index[entries[i].service.name] = i;
        for (const auto& entry : entries)
            for (size_t j = 0; j < entry.service.depends_on.size(); ++j)
                if (!index.count(entry.service.depends_on[j]))
                    fail_line(entry.depends_lines[j], "services." + entry.service.name + ".depends_on",
                              "'" + entry.service.depends_on[j] + "' is not a service of this file");
        enum class Mark { kNew, kPlacing, kPlaced };
        std::vector<Mark> marks(entries.size(), Mark::kNew);
        std::vector<std::string> chain;  // the services being placed, to name a cycle
        std::vector<ComposeService> out;
        std::function<void(size_t)> place = [&](size_t i) {
            if (marks[i] == Mark::kPlaced) return;
            const Entry& entry = entries[i];
            marks[i] = Mark::kPlacing;
            chain.push_back(entry.service.name);
            for (size_t j = 0; j < entry.service.depends_on.size(); ++j) {
                const std::string& dependency = entry.service.depends_on[j];
                if (marks[index.at(dependency)] == Mark::kPlacing)
                    fail_line(entry.depends_lines[j], "services." + entry.service.name + ".depends_on",
                              "a dependency cycle: " + cycle(chain, dependency));
                place(index.at(dependency));
            }
            chain.pop_back();
            marks[i] = Mark::kPlaced;
            out.push_back(entry.service);
        };
        for (size_t i = 0; i < entries.size(); ++i) place(i);
        return out;
    }

    // "a -> b -> a": the chain from `back_to` on, and `back_to` again.
    static std::string cycle(const std::vector<std::string>& chain, const std::string& back_to) {
        std::string text;
        for (auto name = std::find(chain.begin(), chain.end(), back_to); name != chain.end(); ++name)
            text.append(*name).append(" -> ");
        return text.append(back_to);
    }

    std::string path_, dir_;
};

}  // namespace

std::string find_compose_file(const std::string& dir) {
    for (const char* name : {"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}) {
        const fs::path candidate = (fs::path(dir) / name).lexically_normal();
        std::error_code error;
        if (fs::is_regular_file(candidate, error)) return candidate.string();
    }
    fs::path where = fs::absolute(dir).lexically_normal();
    if (!where.has_filename()) where = where.parent_path();  // "/tmp/." is "/tmp/"
    throw ComposeError("no compose.yaml (nor compose.yml, docker-compose.yaml, docker-compose.yml) in " +
                       where.string());
}

ComposeFile parse_compose(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw ComposeError(path + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    return Parser(path).parse(text.str());
}

int64_t parse_mem_limit(const std::string& text) {
    // KiB per unit, case aside; 0 for bytes, which are counted apart so that large numbers of
    // them do not overflow.
    static const std::map<std::string, int64_t> kKib = {
        {"", 0},         {"b", 0},         {"k", 1},       {"kb", 1},       {"kib", 1},      {"m", 1 << 10},
        {"mb", 1 << 10}, {"mib", 1 << 10}, {"g", 1 << 20}, {"gb", 1 << 20}, {"gib", 1 << 20}};
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    std::string unit = text.substr(digits);
    std::transform(unit.begin(), unit.end(), unit.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const auto kib = kKib.find(unit);
    const int64_t value = digits == 0 || digits > 12 ? 0 : std::stoll(text.substr(0, digits));
    if (value == 0 || kib == kKib.end())
        throw std::invalid_argument("'" + text + "': a memory size is like 64m, 1g or a number of bytes");
    auto round_up = [](int64_t amount, int64_t unit_size) { return (amount + unit_size - 1) / unit_size; };
    return kib->second == 0 ? round_up(value, 1 << 20) : round_up(value * kib->second, 1 << 10);
}

}  // namespace kiln::cli
