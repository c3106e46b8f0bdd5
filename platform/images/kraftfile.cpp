#include "images/kraftfile.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

constexpr const char* kKeys =
    "spec, name, cmd, env, rootfs, runtime, template, targets, labels, kconfig (docs/kraftfile.md)";

// What one file says; unset fields are the ones it does not mention (a template fills them).
struct Layer {
    std::optional<std::string> spec, name;
    std::optional<std::vector<std::string>> cmd;
    std::optional<std::vector<std::pair<std::string, std::string>>> env;
    std::optional<std::string> rootfs;
    std::optional<std::map<std::string, std::string>> labels;
    std::map<std::string, std::string> kconfig;
    std::optional<std::vector<std::string>> platforms;  // from `targets`
};

class Parser {
  public:
    Parser(std::string path, int depth) : path_(std::move(path)), depth_(depth) {
        dir_ = fs::absolute(fs::path(path_)).parent_path().lexically_normal().string();
    }

    Layer parse(const std::string& text) {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            throw KraftfileError(path_ + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
        }
        if (!root.IsMap()) fail(root, "", "a Kraftfile is a mapping of keys (spec, name, cmd, ...)");
        Layer layer;
        std::optional<Layer> base;
        std::set<std::string> seen;
        for (const auto& entry : root) {
            const YAML::Node& key = entry.first;
            const YAML::Node& value = entry.second;
            const std::string name = key.IsScalar() ? key.Scalar() : "";
            if (!seen.insert(name).second) fail(key, name, "appears twice");
            if (name == "spec" || name == "specification") {
                layer.spec = scalar(key, value, name);
                if (*layer.spec != "v0.6" && *layer.spec != "0.6")
                    fail(key, name, "version '" + *layer.spec + "' is not supported; Kiln reads v0.6");
                layer.spec = "v0.6";
            } else if (name == "name") {
                layer.name = scalar(key, value, name);
                if (!valid_name(*layer.name))
                    fail(key, name,
                         "'" + *layer.name +
                             "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)");
            } else if (name == "cmd") {
                layer.cmd = command(key, value);
            } else if (name == "env") {
                layer.env = environment(key, value);
            } else if (name == "rootfs") {
                layer.rootfs = rootfs(key, value);
            } else if (name == "runtime") {
                runtime(key, value);
            } else if (name == "template") {
                base = template_layer(key, value);
            } else if (name == "targets") {
                targets(key, value, layer);
            } else if (name == "labels") {
                layer.labels = labels(key, value);
            } else if (name == "kconfig") {
                kconfig(key, value, layer);
            } else if (name == "unikraft" || name == "libraries") {
                fail(key, name,
                     "Kiln does not build Unikraft from source: its own kernel runs the program in rootfs "
                     "(remove '" +
                         name + "')");
            } else if (name == "volumes") {
                fail(key, name, "volumes are not supported yet");
            } else if (name == "outdir") {
                scalar(key, value, name);  // where kraft puts build artifacts: Kiln keeps images in its store
            } else {
                fail(key, name, "unknown key; Kiln reads " + std::string(kKeys));
            }
        }
        if (base) merge_onto(*base, layer);
        return layer;
    }

  private:
    [[noreturn]] void fail(const YAML::Node& at, const std::string& key, const std::string& why) const {
        std::string text = path_ + ":" + std::to_string(at.Mark().line + 1) + ": ";
        if (!key.empty()) text += key + ": ";
        throw KraftfileError(text + why);
    }

    std::string scalar(const YAML::Node& key, const YAML::Node& value, const std::string& name) const {
        if (!value.IsScalar()) fail(key, name, "expected a single value");
        return value.Scalar();
    }

    std::vector<std::string> command(const YAML::Node& key, const YAML::Node& value) const {
        if (value.IsScalar()) {
            try {
                return split_command(value.Scalar());
            } catch (const std::invalid_argument& e) {
                fail(key, "cmd", e.what());
            }
        }
        if (!value.IsSequence()) fail(key, "cmd", "expected a string or a list of strings");
        std::vector<std::string> out;
        for (const auto& item : value) {
            if (!item.IsScalar()) fail(item, "cmd", "expected a string or a list of strings");
            out.push_back(item.Scalar());
        }
        return out;
    }

    static bool valid_env_name(const std::string& name) {
        if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
        return std::all_of(name.begin(), name.end(),
                           [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    }

    std::vector<std::pair<std::string, std::string>> environment(const YAML::Node& key, const YAML::Node& value) const {
        std::vector<std::pair<std::string, std::string>> out;
        auto add = [&](const YAML::Node& at, const std::string& name, const std::string& text) {
            if (!valid_env_name(name)) fail(at, "env", "'" + name + "' is not a variable name");
            out.emplace_back(name, text);
        };
        if (value.IsMap()) {
            for (const auto& entry : value) {
                if (!entry.second.IsScalar() && !entry.second.IsNull())
                    fail(entry.first, "env", "the value of " + entry.first.Scalar() + " must be a single value");
                add(entry.first, entry.first.Scalar(), entry.second.IsNull() ? "" : entry.second.Scalar());
            }
        } else if (value.IsSequence()) {
            for (const auto& item : value) {
                if (!item.IsScalar()) fail(item, "env", "expected NAME=VALUE");
                const std::string& text = item.Scalar();
                const auto equals = text.find('=');
                if (equals == std::string::npos) fail(item, "env", "'" + text + "': expected NAME=VALUE");
                add(item, text.substr(0, equals), text.substr(equals + 1));
            }
        } else if (!value.IsNull()) {
            fail(key, "env", "expected a list of NAME=VALUE or a mapping");
        }
        return out;
    }

    std::string rootfs(const YAML::Node& key, const YAML::Node& value) const {
        std::string source;
        if (value.IsScalar()) {
            source = value.Scalar();
        } else if (value.IsMap()) {  // spec v0.7's long form
            if (!value["source"] || !value["source"].IsScalar()) fail(key, "rootfs", "expected 'source: PATH'");
            source = value["source"].Scalar();
            if (value["format"] && value["format"].as<std::string>("") != "cpio")
                fail(key, "rootfs", "format '" + value["format"].as<std::string>("") + "': Kiln makes a cpio");
        } else {
            fail(key, "rootfs", "expected a path to a directory, a cpio archive or a tarball");
        }
        const fs::path resolved = (fs::path(dir_) / source).lexically_normal();
        std::error_code error;
        if (!fs::exists(resolved, error)) fail(key, "rootfs", resolved.string() + " does not exist");
        return resolved.string();
    }

    void runtime(const YAML::Node& key, const YAML::Node& value) const {
        const std::string text = scalar(key, value, "runtime");
        // Unikraft's ELF-loader runtimes do what the Kiln kernel does: run a Linux binary.
        std::string base = text.substr(0, text.find(':'));
        if (base.rfind("unikraft.org/", 0) == 0) base = base.substr(13);
        if (base == "kiln" || base == "base" || base == "base-compat" || base == "elfloader" || base == "app-elfloader")
            return;
        fail(key, "runtime",
             "'" + text +
                 "' is not a runtime Kiln has: the Kiln kernel runs the Linux program in rootfs (use "
                 "'runtime: kiln' or leave it out)");
    }

    Layer template_layer(const YAML::Node& key, const YAML::Node& value) const {
        const std::string text = scalar(key, value, "template");
        const fs::path dir = (fs::path(dir_) / text).lexically_normal();
        std::error_code error;
        if (!fs::is_directory(dir, error))
            fail(key, "template", "'" + text + "' is not a directory (Kiln reads templates from local directories)");
        if (depth_ >= 8) fail(key, "template", "templates nest more than 8 deep");
        const std::string path = find_kraftfile(dir.string());
        std::ifstream in(path);
        std::stringstream text_in;
        text_in << in.rdbuf();
        return Parser(path, depth_ + 1).parse(text_in.str());
    }

    void targets(const YAML::Node& key, const YAML::Node& value, Layer& layer) const {
        if (!value.IsSequence()) fail(key, "targets", "expected a list of targets (kiln/x86_64)");
        for (const auto& item : value) {
            std::string platform, arch;
            if (item.IsScalar()) {
                const std::string& text = item.Scalar();
                platform = text.substr(0, text.find('/'));
                arch = text.find('/') == std::string::npos ? "x86_64" : text.substr(text.find('/') + 1);
            } else if (item.IsMap()) {
                for (const auto& field : item) {
                    const std::string name = field.first.Scalar();
                    if (name == "plat" || name == "platform")
                        platform = scalar(field.first, field.second, "targets");
                    else if (name == "arch" || name == "architecture")
                        arch = scalar(field.first, field.second, "targets");
                    else if (name == "kconfig")
                        kconfig(field.first, field.second, layer);
                    else if (name != "name")
                        fail(field.first, "targets", "unknown target key '" + name + "' (plat, arch, kconfig, name)");
                }
                if (arch.empty()) arch = "x86_64";
            } else {
                fail(item, "targets", "expected kiln/x86_64 or {plat: kiln, arch: x86_64}");
            }
            const std::vector<std::string> runs_on = platforms_of_target(platform, arch);
            if (runs_on.empty())
                fail(item, "targets",
                     "'" + platform + "/" + arch +
                         "' is not a Kiln target: kiln/x86_64 (either platform), fc/x86_64 or qemu/x86_64 (a "
                         "microVM on KVM), linuxu/x86_64 (a Linux process)");
            if (!layer.platforms) layer.platforms.emplace();
            for (const auto& p : runs_on)
                if (std::find(layer.platforms->begin(), layer.platforms->end(), p) == layer.platforms->end())
                    layer.platforms->push_back(p);
        }
    }

    std::map<std::string, std::string> labels(const YAML::Node& key, const YAML::Node& value) const {
        if (!value.IsMap()) fail(key, "labels", "expected a mapping of label: value");
        std::map<std::string, std::string> out;
        for (const auto& entry : value) {
            if (!entry.first.IsScalar() || !entry.second.IsScalar())
                fail(entry.first, "labels", "labels and their values are single values");
            out[entry.first.Scalar()] = entry.second.Scalar();
        }
        return out;
    }

    void kconfig(const YAML::Node& key, const YAML::Node& value, Layer& layer) const {
        auto add = [&](const YAML::Node& at, const std::string& option, const std::string& setting) {
            const auto& known = kernel_options();
            if (std::find(known.begin(), known.end(), option) == known.end())
                fail(at, "kconfig",
                     "'" + option + "' is not an option of the Kiln kernel" +
                         (known.empty() ? std::string(" (it has none: every micro-library is built in)") : ""));
            layer.kconfig[option] = setting;
        };
        if (value.IsMap()) {
            for (const auto& entry : value) add(entry.first, entry.first.Scalar(), entry.second.as<std::string>(""));
        } else if (value.IsSequence()) {
            for (const auto& item : value) {
                if (!item.IsScalar()) fail(item, "kconfig", "expected CONFIG_NAME=value");
                const std::string& text = item.Scalar();
                const auto equals = text.find('=');
                add(item, text.substr(0, equals), equals == std::string::npos ? "y" : text.substr(equals + 1));
            }
        } else {
            fail(key, "kconfig", "expected a list of CONFIG_NAME=value or a mapping");
        }
    }

    static void merge_onto(const Layer& base, Layer& layer) {
        if (!layer.spec) layer.spec = base.spec;
        if (!layer.name) layer.name = base.name;
        if (!layer.cmd) layer.cmd = base.cmd;
        if (!layer.env) layer.env = base.env;
        if (!layer.rootfs) layer.rootfs = base.rootfs;
        if (!layer.labels) layer.labels = base.labels;
        if (!layer.platforms) layer.platforms = base.platforms;
        for (const auto& [option, setting] : base.kconfig) layer.kconfig.try_emplace(option, setting);
    }

    std::string path_, dir_;
    int depth_;
};

}  // namespace

std::vector<std::string> platforms_of_target(const std::string& platform, const std::string& arch) {
    if (arch != "x86_64") return {};
    if (platform == "kiln") return {"kvm", "proc"};
    if (platform == "fc" || platform == "firecracker" || platform == "qemu") return {"kvm"};
    if (platform == "linuxu") return {"proc"};
    return {};
}

const std::vector<std::string>& kernel_options() {
    static const std::vector<std::string> options;
    return options;
}

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 63) return false;
    auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!lower_or_digit(name[0])) return false;
    return std::all_of(name.begin(), name.end(),
                       [&](char c) { return lower_or_digit(c) || c == '.' || c == '_' || c == '-'; });
}

std::vector<std::string> split_command(const std::string& text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote != 0) {
            if (c == quote) {
                quote = 0;
            } else if (c == '\\' && quote == '"' && i + 1 < text.size()) {
                word += text[++i];
            } else {
                word += c;
            }
        } else if (c == '"' || c == '\'') {
            quote = c;
            in_word = true;
        } else if (c == '\\' && i + 1 < text.size()) {
            word += text[++i];
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (quote != 0) throw std::invalid_argument(std::string("unterminated ") + quote + " quote");
    if (in_word) words.push_back(std::move(word));
    return words;
}

std::string find_kraftfile(const std::string& dir) {
    for (const char* name : {"Kraftfile", "kraft.yaml", "kraft.yml"}) {
        const fs::path candidate = fs::path(dir) / name;
        std::error_code error;
        if (fs::is_regular_file(candidate, error)) return candidate.string();
    }
    throw KraftfileError(dir + ": no Kraftfile (nor kraft.yaml, kraft.yml) here");
}

Kraftfile parse_kraftfile(const std::string& text, const std::string& path) {
    Parser parser(path, 0);
    Layer layer = parser.parse(text);
    Kraftfile k;
    k.path = path;
    k.dir = fs::absolute(fs::path(path)).parent_path().lexically_normal().string();
    if (!layer.spec) throw KraftfileError(path + ":1: spec: missing; a Kraftfile starts with 'spec: v0.6'");
    k.spec = *layer.spec;
    if (layer.name) {
        k.name = *layer.name;
    } else {
        k.name = fs::path(k.dir).filename().string();
        std::transform(k.name.begin(), k.name.end(), k.name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (!valid_name(k.name))
            throw KraftfileError(path + ":1: name: missing, and the directory's name '" + k.name +
                                 "' is not a valid image name");
    }
    k.cmd = layer.cmd.value_or(std::vector<std::string>{});
    k.env = layer.env.value_or(std::vector<std::pair<std::string, std::string>>{});
    k.rootfs = layer.rootfs;
    k.labels = layer.labels.value_or(std::map<std::string, std::string>{});
    k.kconfig = layer.kconfig;
    k.platforms = layer.platforms.value_or(std::vector<std::string>{});
    return k;
}

Kraftfile read_kraftfile(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw KraftfileError(path + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    return parse_kraftfile(text.str(), path);
}

}  // namespace kiln::images
