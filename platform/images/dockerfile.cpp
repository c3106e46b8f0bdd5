#include "images/dockerfile.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "images/build_sandbox.h"
#include "images/kraftfile.h"

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

// Docker's instructions that Kiln does not build, with why: refused by name.
const std::map<std::string, std::string>& refused_instructions() {
    static const std::map<std::string, std::string> refused = {
        {"ONBUILD", "Kiln's images are not built upon"},
        {"HEALTHCHECK", "Kiln checks an instance's readiness by its listening port"},
        {"STOPSIGNAL", "Kiln stops an instance as a whole"},
        {"VOLUME", "give volumes to `kiln run -v` instead"},
        {"MAINTAINER", "deprecated by Docker: use LABEL maintainer=..."},
    };
    return refused;
}

const std::set<std::string>& supported_instructions() {
    static const std::set<std::string> supported = {"FROM", "COPY",  "ADD",    "ENV", "ARG",   "WORKDIR",   "CMD",
                                                    "USER", "LABEL", "EXPOSE", "RUN", "SHELL", "ENTRYPOINT"};
    return supported;
}

[[noreturn]] void fail(const std::string& path, int line, const std::string& what) {
    throw DockerfileError(path + ":" + std::to_string(line) + ": " + what);
}

std::string trim(const std::string& s) {
    const auto begin = s.find_first_not_of(" \t\r");
    if (begin == std::string::npos) return {};
    return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Shell-form arguments as words: blanks separate, quotes group, a backslash escapes (the
// Kraftfile's command splitting, kraftfile.h).
std::vector<std::string> words(const std::string& text, const std::string& path, int line) {
    try {
        return split_command(text);
    } catch (const std::invalid_argument&) {
        fail(path, line, "a quote is not closed");
    }
}

// $NAME, ${NAME}, ${NAME:-default} and ${NAME:+alternative}, as Docker expands them; \$ is a
// dollar sign. A name never set expands to nothing.
std::string expand(const std::string& text, const std::map<std::string, std::string>& variables,
                   const std::string& path, int line) {
    auto value_of = [&](const std::string& name) -> const std::string* {
        auto it = variables.find(name);
        return it == variables.end() ? nullptr : &it->second;
    };
    auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\' && i + 1 < text.size() && text[i + 1] == '$') {
            out += '$';
            ++i;
        } else if (c != '$' || i + 1 == text.size()) {
            out += c;
        } else if (text[i + 1] == '{') {
            const size_t close = text.find('}', i + 2);
            if (close == std::string::npos) fail(path, line, "a ${ is not closed");
            const std::string inside = text.substr(i + 2, close - i - 2);
            const size_t colon = inside.find(':');
            const std::string name = inside.substr(0, colon);
            if (name.empty() || !std::all_of(name.begin(), name.end(), is_name_char))
                fail(path, line, "'${" + inside + "}' is not a variable Kiln can expand");
            const std::string* value = value_of(name);
            const bool set = value != nullptr && !value->empty();
            if (colon == std::string::npos) {
                if (value) out += *value;
            } else if (inside.compare(colon, 2, ":-") == 0) {
                out += set ? *value : inside.substr(colon + 2);
            } else if (inside.compare(colon, 2, ":+") == 0) {
                out += set ? inside.substr(colon + 2) : "";
            } else {
                fail(path, line, "'${" + inside + "}': only ${NAME:-default} and ${NAME:+alternative} are expanded");
            }
            i = close;
        } else if (is_name_char(text[i + 1])) {
            size_t end = i + 1;
            while (end < text.size() && is_name_char(text[end])) ++end;
            if (const std::string* value = value_of(text.substr(i + 1, end - i - 1))) out += *value;
            i = end - 1;
        } else {
            out += c;
        }
    }
    return out;
}

// NAME=VALUE pairs (ENV, LABEL, ARG), or ENV's older "NAME VALUE..." form.
std::vector<std::pair<std::string, std::string>> pairs(const DockerInstruction& in, const std::string& text,
                                                       const std::string& path, bool legacy_allowed) {
    const std::vector<std::string> list = words(text, path, in.line);
    if (list.empty()) fail(path, in.line, in.keyword + " needs NAME=VALUE");
    std::vector<std::pair<std::string, std::string>> out;
    if (legacy_allowed && list.front().find('=') == std::string::npos) {
        // ENV NAME the rest of the line (its blanks kept as written).
        const std::string rest = trim(text.substr(text.find(list.front()) + list.front().size()));
        out.emplace_back(list.front(), words(rest, path, in.line).empty() ? "" : rest);
        return out;
    }
    for (const std::string& word : list) {
        const size_t equals = word.find('=');
        if (equals == 0 || equals == std::string::npos)
            fail(path, in.line, in.keyword + ": '" + word + "' is not NAME=VALUE");
        out.emplace_back(word.substr(0, equals), word.substr(equals + 1));
    }
    return out;
}

std::vector<std::string> path_parts(const std::string& path) {
    std::vector<std::string> parts;
    for (const auto& part : fs::path(path).lexically_normal())
        if (part != "/" && part != "." && !part.empty()) parts.push_back(part.string());
    return parts;
}

// Whether the pattern's parts match the start of the path's (a match of a directory excludes
// what is below it); `**` matches any number of parts.
bool matches_prefix(const std::vector<std::string>& pattern, size_t p, const std::vector<std::string>& path, size_t i) {
    if (p == pattern.size()) return true;
    if (pattern[p] == "**") {
        for (size_t j = i; j <= path.size(); ++j)
            if (matches_prefix(pattern, p + 1, path, j)) return true;
        return false;
    }
    return i < path.size() && ::fnmatch(pattern[p].c_str(), path[i].c_str(), 0) == 0 &&
           matches_prefix(pattern, p + 1, path, i + 1);
}

// One FROM and what follows it: a multi-stage build's earlier stages are sources for COPY --from
// and bases for later FROMs; the last is the image.
struct Stage {
    std::string name;                              // FROM ... AS name, lower case ("" without)
    std::map<std::string, RootfsEntry> files;      // the image's files by path
    DockerImageConfig config;                      // what running it means
    std::map<std::string, std::string> variables;  // its ARGs and ENVs so far
    std::pair<std::string, int> user;              // USER as written, and its line ("" for root)
    std::vector<std::string> shell = {"/bin/sh", "-c"};
};

class Builder {
  public:
    Builder(std::string path, std::string context, const std::map<std::string, std::string>& build_args,
            BuildSandbox sandbox, const BaseImageResolver& resolve)
        : path_(std::move(path)), context_(fs::weakly_canonical(context)), filter_(context_.string()),
          build_args_(build_args), sandbox_(sandbox), resolve_(resolve) {}

    DockerBuild build(const std::vector<DockerInstruction>& instructions) {
        for (const DockerInstruction& in : instructions) {
            if (stages_.empty() && in.keyword != "FROM" && in.keyword != "ARG")
                fail(path_, in.line, in.keyword + " before FROM: a Dockerfile starts with FROM (ARGs may come first)");
            if (in.keyword == "FROM") {
                from(in);
            } else if (in.keyword == "ARG") {
                arg(in);
            } else if (in.keyword == "ENV") {
                for (auto& [name, value] : pairs(in, expand(in.text, stage().variables, path_, in.line), path_, true)) {
                    set_env(name, value);
                    stage().variables[name] = value;
                }
            } else if (in.keyword == "LABEL") {
                for (auto& [name, value] : pairs(in, expand(in.text, stage().variables, path_, in.line), path_, false))
                    stage().config.labels[name] = value;
            } else if (in.keyword == "WORKDIR") {
                workdir(in);
            } else if (in.keyword == "USER") {
                user(in);
            } else if (in.keyword == "EXPOSE") {
                expose(in);
            } else if (in.keyword == "CMD") {
                stage().config.cmd = command(in);
            } else if (in.keyword == "ENTRYPOINT") {
                stage().config.entrypoint = command(in);
                stage().config.cmd.clear();  // as Docker: an ENTRYPOINT resets the CMD before it
            } else if (in.keyword == "RUN") {
                run(in);
            } else if (in.keyword == "SHELL") {
                shell(in);
            } else {  // COPY, ADD
                copy(in);
            }
        }
        if (stages_.empty()) fail(path_, 1, "no FROM: a Dockerfile starts with FROM");
        DockerBuild result;
        if (const auto [uid, gid] = resolved_user(); uid != 0 || gid != 0)
            stage().config.user = std::to_string(uid) + ":" + std::to_string(gid);
        result.config = std::move(stage().config);
        for (auto& [p, entry] : stage().files)
            if (p != "/") result.entries.push_back(std::move(entry));  // the root is the archive itself
        return result;
    }

  private:
    // FROM scratch or FROM an earlier stage, each optionally AS a name; only the ARGs before the
    // first FROM are expanded here, as Docker.
    void from(const DockerInstruction& in) {
        const std::vector<std::string> list = words(expand(in.text, globals_, path_, in.line), path_, in.line);
        if (list.empty()) fail(path_, in.line, "FROM needs an image");
        if (list.size() != 1 && !(list.size() == 3 && upper(list[1]) == "AS"))
            fail(path_, in.line, "FROM takes an image and an optional 'AS name'");
        for (const auto& [flag, value] : in.flags) fail(path_, in.line, "FROM --" + flag + " is not supported");
        Stage next;
        stage_args_.clear();
        if (list.size() == 3) {
            next.name = lower(list[2]);
            if (next.name == "scratch" || find_stage(next.name) != nullptr ||
                next.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_.-") != std::string::npos)
                fail(path_, in.line,
                     "FROM ... AS " + list[2] + ": not a new stage name (letters, digits, '_', '.', '-')");
        }
        if (const Stage* base = find_stage(lower(list[0]))) {
            next.files = base->files;
            next.config = base->config;
            next.shell = base->shell;
            next.user = base->user;
            for (const auto& [name, value] : base->config.env) next.variables[name] = value;
        } else if (list[0] != "scratch") {
            if (!resolve_)
                fail(path_, in.line,
                     "FROM " + list[0] + ": Kiln builds from scratch or an earlier stage only here (no image store)");
            start_from_image(next, list[0], in);
        }
        stages_.push_back(std::move(next));
        add_directory("/", 0755);
    }

    // A stage on another image's files and configuration (its USER kept as numbers).
    void start_from_image(Stage& next, const std::string& reference, const DockerInstruction& in) {
        BaseImage image;
        try {
            image = resolve_(reference);
        } catch (const std::exception& e) {
            fail(path_, in.line, "FROM " + reference + ": " + e.what());
        }
        for (RootfsEntry& entry : image.entries) next.files[entry.path] = std::move(entry);
        next.config = std::move(image.config);
        for (const auto& [name, value] : next.config.env) next.variables[name] = value;
        if (!next.config.user.empty()) next.user = {next.config.user, in.line};
        next.config.user.clear();  // set again at the end, from the stage's USER
    }

    const Stage* find_stage(const std::string& name) const {
        for (const Stage& s : stages_)
            if (!s.name.empty() && s.name == name) return &s;
        return nullptr;
    }

    Stage& stage() { return stages_.back(); }
    const Stage& stage() const { return stages_.back(); }

    // Before the first FROM an ARG is global (for FROM lines); in a stage, `ARG NAME` without a
    // value takes the global one, as Docker.
    void arg(const DockerInstruction& in) {
        auto& variables = stages_.empty() ? globals_ : stage().variables;
        for (const std::string& word : words(in.text, path_, in.line)) {
            const size_t equals = word.find('=');
            const std::string name = word.substr(0, equals);
            if (name.empty()) fail(path_, in.line, "ARG needs a name");
            auto given = build_args_.find(name);
            auto global = globals_.find(name);
            if (given != build_args_.end())
                variables[name] = given->second;
            else if (equals != std::string::npos)
                variables[name] = expand(word.substr(equals + 1), variables, path_, in.line);
            else if (!stages_.empty() && global != globals_.end())
                variables[name] = global->second;
            else
                variables.emplace(name, "");
            if (!stages_.empty()) stage_args_.insert(name);
        }
    }

    void set_env(const std::string& name, const std::string& value) {
        auto& env = stage().config.env;
        auto it = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == name; });
        if (it != env.end())
            it->second = value;
        else
            env.emplace_back(name, value);
    }

    // A path in the image: absolute, or relative to WORKDIR.
    std::string image_path(const std::string& raw) const {
        const fs::path p = fs::path(raw).is_absolute() ? fs::path(raw) : fs::path(stage().config.workdir) / raw;
        std::string text = p.lexically_normal().string();
        // lexically_normal() already drops a ".." above the root, as Docker does ("/../etc" is "/etc").
        while (text.size() > 1 && text.back() == '/') text.pop_back();
        return text;
    }

    void workdir(const DockerInstruction& in) {
        const std::string dir = trim(expand(in.text, stage().variables, path_, in.line));
        if (dir.empty()) fail(path_, in.line, "WORKDIR needs a path");
        stage().config.workdir = image_path(dir);
        add_directory(stage().config.workdir, 0755);
    }

    // USER NAME|UID[:GROUP|GID]: kept as written, and resolved in the image's /etc/passwd and
    // /etc/group where it is used (a RUN, the finished image), as Docker does when it starts.
    void user(const DockerInstruction& in) {
        const std::string who = trim(expand(in.text, stage().variables, path_, in.line));
        if (who.empty() || who.find_first_of(" \t") != std::string::npos)
            fail(path_, in.line, "USER takes one NAME|UID[:GROUP|GID]");
        stage().user = {who, in.line};
    }

    // The stage's USER as numbers, from the stage's own files.
    std::pair<uint32_t, uint32_t> resolved_user() const {
        const auto& [who, line] = stage().user;
        if (who.empty()) return {0, 0};
        try {
            return resolve_user(who, [this](const std::string& path) -> const RootfsEntry* {
                const auto it = stage().files.find(path);
                return it == stage().files.end() ? nullptr : &it->second;
            });
        } catch (const RootfsError& e) {
            fail(path_, line, e.what());
        }
    }

    void expose(const DockerInstruction& in) {
        for (std::string port : words(expand(in.text, stage().variables, path_, in.line), path_, in.line)) {
            std::string protocol = "tcp";
            if (const size_t slash = port.find('/'); slash != std::string::npos) {
                protocol = port.substr(slash + 1);
                port = port.substr(0, slash);
            }
            char* end = nullptr;
            const long number = std::strtol(port.c_str(), &end, 10);
            if (port.empty() || *end != '\0' || number < 1 || number > 65535 ||
                (protocol != "tcp" && protocol != "udp"))
                fail(path_, in.line, "EXPOSE " + port + "/" + protocol + ": not a port (1-65535, tcp or udp)");
            stage().config.exposed.push_back(std::to_string(number) + "/" + protocol);
        }
    }

    // CMD, ENTRYPOINT and RUN: the JSON form as it is, the shell form through the SHELL
    // (/bin/sh -c), as Docker.
    std::vector<std::string> command(const DockerInstruction& in) const {
        if (in.json_form) return in.json;
        const std::string text = trim(in.text);
        if (text.empty()) return {};
        std::vector<std::string> out = stage().shell;
        out.push_back(text);
        return out;
    }

    void shell(const DockerInstruction& in) {
        if (!in.json_form || in.json.empty())
            fail(path_, in.line, "SHELL takes a JSON array: SHELL [\"/bin/sh\", \"-c\"]");
        stage().shell = in.json;
    }

    // The command in the build sandbox (build_sandbox.h) on the stage's files; the stage's files
    // are what it leaves. Its environment: the ENVs, then the ARGs of this stage, as Docker's.
    void run(const DockerInstruction& in) {
        for (const auto& [flag, value] : in.flags) fail(path_, in.line, "RUN --" + flag + " is not supported");
        if (sandbox_ == BuildSandbox::kNone)
            fail(path_, in.line, "RUN needs the build sandbox, and this build runs without one");
        const auto [uid, gid] = resolved_user();
        SandboxCommand command_to_run{command(in), stage().config.env, stage().config.workdir, uid, gid};
        if (command_to_run.argv.empty()) fail(path_, in.line, "RUN needs a command");
        for (const std::string& name : stage_args_)
            if (std::none_of(command_to_run.env.begin(), command_to_run.env.end(),
                             [&](const auto& e) { return e.first == name; }))
                command_to_run.env.emplace_back(name, stage().variables[name]);
        std::vector<RootfsEntry> entries;
        for (const auto& [p, entry] : stage().files)
            if (p != "/") entries.push_back(entry);
        const std::string& program = command_to_run.argv.front();
        if (program.front() == '/' && find_entry(entries, program) == nullptr)
            fail(path_, in.line,
                 "RUN: " + program + " is not in the image" +
                     (in.json_form ? "" : " (the shell of RUN's shell form: COPY one in, or use the JSON form)"));
        try {
            entries = run_in_build_sandbox(entries, command_to_run);
        } catch (const SandboxError& e) {
            fail(path_, in.line, "RUN: " + std::string(e.what()));
        }
        stage().files.clear();
        add_directory("/", 0755);
        for (RootfsEntry& entry : entries) stage().files[entry.path] = std::move(entry);
    }

    void copy(const DockerInstruction& in) {
        unsigned chmod = 0;
        const Stage* from_stage = nullptr;
        for (const auto& [flag, value] : in.flags) {
            if (flag == "chmod") {
                char* end = nullptr;
                chmod = static_cast<unsigned>(std::strtoul(value.c_str(), &end, 8));
                if (value.empty() || *end != '\0' || chmod > 07777)
                    fail(path_, in.line, in.keyword + " --chmod=" + value + ": not an octal mode");
            } else if (flag == "chown") {
                copy_owner_ = chown_owner(value, in);
            } else if (flag == "from" && in.keyword == "COPY") {
                from_stage = &source_stage(value, in);
            } else {
                fail(path_, in.line, in.keyword + " --" + flag + " is not supported");
            }
        }
        std::vector<std::string> list =
            in.json_form ? in.json : words(expand(in.text, stage().variables, path_, in.line), path_, in.line);
        if (in.json_form)
            for (std::string& s : list) s = expand(s, stage().variables, path_, in.line);
        if (list.size() < 2) fail(path_, in.line, in.keyword + " needs a source and a destination");
        const std::string destination = list.back();
        list.pop_back();
        if (from_stage != nullptr) {
            copy_from_stage(*from_stage, list, destination, chmod, in);
            copy_owner_.reset();
            return;
        }
        std::vector<fs::path> sources;
        for (const std::string& pattern : list) {
            if (pattern.find("://") != std::string::npos || pattern.rfind("git@", 0) == 0)
                fail(path_, in.line, in.keyword + " " + pattern + ": Kiln builds from the local context only");
            const std::vector<fs::path> matched = match(pattern, in);
            sources.insert(sources.end(), matched.begin(), matched.end());
        }
        // Into a directory when the destination says so, is one, or for more than one source.
        const std::string target = image_path(destination);
        const bool into_directory = destination.back() == '/' || sources.size() > 1 || is_directory_in_image(target);
        for (const fs::path& source : sources) {
            std::optional<std::vector<RootfsEntry>> unpacked;
            if (fs::is_directory(source)) {
                add_tree(visible(read_rootfs(source.string()), source), target, chmod, in);
            } else if (in.keyword == "ADD" && (unpacked = archive_entries(source))) {
                add_tree(std::move(*unpacked), target, chmod, in);
            } else {
                const std::string file_target =
                    into_directory ? image_path(target + "/" + source.filename().string()) : target;
                add_file(source, file_target, chmod, in);
            }
        }
        copy_owner_.reset();
    }

    // --chown=USER[:GROUP] as Docker reads it: names from the stage's /etc/passwd and /etc/group
    // as they are now; a user without a group gives its uid as the gid too.
    std::pair<uint32_t, uint32_t> chown_owner(const std::string& value, const DockerInstruction& in) const {
        if (value.empty()) fail(path_, in.line, in.keyword + " --chown= needs USER[:GROUP]");
        try {
            auto owner = resolve_user(value, [this](const std::string& path) -> const RootfsEntry* {
                const auto it = stage().files.find(path);
                return it == stage().files.end() ? nullptr : &it->second;
            });
            if (value.find(':') == std::string::npos) owner.second = owner.first;
            return owner;
        } catch (const RootfsError& e) {
            fail(path_, in.line, in.keyword + " --chown=" + value + ": " + e.what());
        }
    }

    // COPY --from=NAME or --from=INDEX: an earlier stage.
    const Stage& source_stage(const std::string& ref, const DockerInstruction& in) const {
        const size_t current = stages_.size() - 1;
        if (!ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos) {
            const unsigned long index = std::strtoul(ref.c_str(), nullptr, 10);
            if (ref.size() > 6 || index >= current)
                fail(path_, in.line, "COPY --from=" + ref + ": there is no earlier stage " + ref);
            return stages_[index];
        }
        const Stage* found = find_stage(lower(ref));
        if (found == nullptr || found == &stages_.back())
            fail(path_, in.line,
                 "COPY --from=" + ref + ": no earlier stage of that name (images from a registry are not pulled yet)");
        return *found;
    }

    // Paths in an earlier stage's files: a file or a symbolic link by its name, a directory's
    // contents, or what a wildcard in the last part matches.
    void copy_from_stage(const Stage& source, const std::vector<std::string>& patterns, const std::string& destination,
                         unsigned chmod, const DockerInstruction& in) {
        std::vector<const RootfsEntry*> matched;
        for (const std::string& pattern : patterns) {
            const std::string wanted = (fs::path("/") / fs::path(pattern).relative_path()).lexically_normal().string();
            const std::string clean =
                wanted.size() > 1 && wanted.back() == '/' ? wanted.substr(0, wanted.size() - 1) : wanted;
            const size_t before = matched.size();
            const fs::path parent = fs::path(clean).parent_path();
            for (const auto& [p, entry] : source.files)
                if (p == clean ||
                    (clean.find_first_of("*?[") != std::string::npos && fs::path(p).parent_path() == parent &&
                     ::fnmatch(fs::path(clean).filename().c_str(), fs::path(p).filename().c_str(), FNM_PERIOD) == 0))
                    matched.push_back(&entry);
            if (matched.size() == before) fail(path_, in.line, "COPY --from: " + pattern + ": not in that stage");
        }
        const std::string target = image_path(destination);
        const bool into_directory = destination.back() == '/' || matched.size() > 1 || is_directory_in_image(target);
        for (const RootfsEntry* entry : matched) {
            if ((entry->mode & S_IFMT) == S_IFDIR) {
                std::vector<RootfsEntry> below;
                const std::string prefix = entry->path == "/" ? "/" : entry->path + "/";
                for (const auto& [p, e] : source.files)
                    if (p.size() > prefix.size() && p.compare(0, prefix.size(), prefix) == 0)
                        below.push_back({p.substr(prefix.size() - 1), e.mode, e.data, e.uid, e.gid});
                add_tree(std::move(below), target, chmod, in);
            } else {
                RootfsEntry copy = *entry;
                copy.path =
                    into_directory ? image_path(target + "/" + fs::path(entry->path).filename().string()) : target;
                if (chmod != 0 && (copy.mode & S_IFMT) != S_IFLNK) copy.mode = (copy.mode & S_IFMT) | chmod;
                put(std::move(copy), in);
            }
        }
    }

    // The context's paths a source names: itself, or what its last part's wildcards match. A
    // source may not leave the context.
    std::vector<fs::path> match(const std::string& pattern, const DockerInstruction& in) const {
        const fs::path wanted = (context_ / fs::path(pattern).relative_path()).lexically_normal();
        auto inside = [&](const fs::path& p) {
            const auto relative = p.lexically_relative(context_);
            return !relative.empty() && *relative.begin() != "..";
        };
        if (!inside(wanted) && wanted != context_)
            fail(path_, in.line, in.keyword + " " + pattern + ": outside the build context " + context_.string());
        std::error_code error;
        if (pattern.find_first_of("*?[") == std::string::npos) {
            if (!fs::exists(wanted, error) ||
                (wanted != context_ && filter_.excluded(wanted.lexically_relative(context_))))
                fail(path_, in.line,
                     in.keyword + " " + pattern + ": no such file in the build context " + context_.string());
            // A symbolic link in the context may not lead out of it.
            const fs::path real = fs::weakly_canonical(wanted, error);
            if (error || (real != context_ && !inside(real)))
                fail(path_, in.line, in.keyword + " " + pattern + ": leads outside the build context");
            return {wanted};  // by the name given: a file copied into a directory keeps it
        }
        std::vector<fs::path> found;
        const fs::path dir = wanted.parent_path();
        for (const auto& entry : fs::directory_iterator(dir, error)) {
            if (::fnmatch(wanted.filename().c_str(), entry.path().filename().c_str(), FNM_PERIOD) != 0 ||
                filter_.excluded(entry.path().lexically_relative(context_)))
                continue;
            const fs::path real = fs::weakly_canonical(entry.path(), error);
            if (error || !inside(real))
                fail(path_, in.line, in.keyword + " " + entry.path().string() + ": leads outside the build context");
            found.push_back(entry.path());
        }
        if (found.empty()) fail(path_, in.line, in.keyword + " " + pattern + ": matches nothing in the build context");
        std::sort(found.begin(), found.end());
        return found;
    }

    // A directory's files as read_rootfs gives them, without those .dockerignore excludes.
    std::vector<RootfsEntry> visible(std::vector<RootfsEntry> entries, const fs::path& dir) const {
        const fs::path base = dir.lexically_relative(context_);
        std::erase_if(entries, [&](const RootfsEntry& e) {
            return filter_.excluded((base / fs::path(e.path).relative_path()).lexically_normal().string());
        });
        return entries;
    }

    // A local tarball's files (ADD unpacks them); nothing for any other file.
    static std::optional<std::vector<RootfsEntry>> archive_entries(const fs::path& source) {
        try {
            return read_rootfs(source.string());
        } catch (const RootfsError&) {
            return std::nullopt;
        }
    }

    bool is_directory_in_image(const std::string& path) const {
        auto it = stage().files.find(path);
        return it != stage().files.end() && (it->second.mode & S_IFMT) == S_IFDIR;
    }

    // `dir` and its parents, as directories: a file already at one of them is an error.
    void add_directory(const std::string& dir, unsigned permissions, int line = 0) {
        for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
            auto it = stage().files.find(p.string());
            if (it == stage().files.end())
                stage().files[p.string()] = {p.string(), S_IFDIR | permissions, {}};
            else if ((it->second.mode & S_IFMT) != S_IFDIR)
                fail(path_, line, p.string() + " is a file in the image, not a directory");
            if (p == "/") break;
        }
    }

    // An entry COPY or ADD puts into the image: owned by --chown's user if one was given, else as
    // it came (root for the build context's files, the owner in an ADDed tarball or an earlier
    // stage). Directories only implied by the destination belong to root.
    void put(RootfsEntry entry, const DockerInstruction& in) {
        if (is_directory_in_image(entry.path) && (entry.mode & S_IFMT) != S_IFDIR)
            fail(path_, in.line, in.keyword + ": " + entry.path + " is a directory in the image");
        if (copy_owner_) std::tie(entry.uid, entry.gid) = *copy_owner_;
        add_directory(fs::path(entry.path).parent_path().string(), 0755, in.line);
        stage().files[entry.path] = std::move(entry);
    }

    void add_file(const fs::path& source, const std::string& target, unsigned chmod, const DockerInstruction& in) {
        struct stat st {};
        if (::stat(source.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
            fail(path_, in.line, in.keyword + ": " + source.string() + " is not a file");
        put({target, S_IFREG | (chmod != 0 ? chmod : (st.st_mode & 07777)), read_file_bytes(source.string())}, in);
    }

    void add_tree(std::vector<RootfsEntry> entries, const std::string& target, unsigned chmod,
                  const DockerInstruction& in) {
        add_directory(target, 0755);
        for (RootfsEntry& entry : entries) {
            entry.path = image_path(target + entry.path);
            if (chmod != 0 && (entry.mode & S_IFMT) != S_IFLNK) entry.mode = (entry.mode & S_IFMT) | chmod;
            put(std::move(entry), in);
        }
    }

    std::string path_;
    fs::path context_;
    ContextFilter filter_;
    const std::map<std::string, std::string>& build_args_;
    BuildSandbox sandbox_;
    BaseImageResolver resolve_;
    std::map<std::string, std::string> globals_;  // the ARGs before the first FROM
    std::set<std::string> stage_args_;            // the ARGs declared in the current stage
    std::vector<Stage> stages_;
    std::optional<std::pair<uint32_t, uint32_t>> copy_owner_;  // the COPY or ADD being done's --chown
};

}  // namespace

std::vector<DockerInstruction> parse_dockerfile(const std::string& text, const std::string& path) {
    std::vector<DockerInstruction> out;
    std::istringstream lines(text);
    std::string line;
    int number = 0;
    bool directives = true;  // parser directives come first, before any instruction or other comment
    DockerInstruction current;
    std::string pending;  // an instruction's text so far, across continuation lines
    auto finish = [&] {
        const std::string whole = trim(pending);
        pending.clear();
        if (whole.empty()) return;
        const size_t space = whole.find_first_of(" \t");
        current.keyword = upper(whole.substr(0, space));
        std::string rest = space == std::string::npos ? "" : trim(whole.substr(space));
        if (!supported_instructions().count(current.keyword)) {
            auto refused = refused_instructions().find(current.keyword);
            if (refused != refused_instructions().end())
                fail(path, current.line, current.keyword + " is not supported: " + refused->second);
            fail(path, current.line, "'" + whole.substr(0, space) + "' is not a Dockerfile instruction");
        }
        // --name=value flags before the arguments (COPY --chmod=755 ...).
        while (rest.rfind("--", 0) == 0) {
            const size_t end = rest.find_first_of(" \t");
            const std::string flag = rest.substr(2, end == std::string::npos ? std::string::npos : end - 2);
            const size_t equals = flag.find('=');
            if (equals == std::string::npos || equals == 0)
                fail(path, current.line, current.keyword + " --" + flag + ": expected --name=value");
            current.flags.emplace_back(flag.substr(0, equals), flag.substr(equals + 1));
            rest = end == std::string::npos ? "" : trim(rest.substr(end));
        }
        current.text = rest;
        if (!rest.empty() && rest.front() == '[') {
            const nlohmann::json array = nlohmann::json::parse(rest, nullptr, false);
            if (array.is_array() &&
                std::all_of(array.begin(), array.end(), [](const auto& s) { return s.is_string(); })) {
                current.json_form = true;
                for (const auto& s : array) current.json.push_back(s.get<std::string>());
            }
        }
        out.push_back(std::move(current));
        current = {};
    };
    while (std::getline(lines, line)) {
        ++number;
        if (line.find('\0') != std::string::npos) fail(path, number, "a NUL byte: not a text file");
        const std::string stripped = trim(line);
        if (!stripped.empty() && stripped[0] == '#') {
            if (directives && pending.empty()) {
                const std::string directive = trim(stripped.substr(1));
                const size_t equals = directive.find('=');
                const std::string name = equals == std::string::npos ? "" : upper(trim(directive.substr(0, equals)));
                if (name == "ESCAPE" && trim(directive.substr(equals + 1)) != "\\")
                    fail(path, number, "the escape directive: Kiln reads only the default escape character, \\");
                if (name != "ESCAPE" && name != "SYNTAX" && name != "CHECK") directives = false;
            }
            continue;  // a comment, also between the lines of one instruction
        }
        directives = false;
        if (pending.empty()) {
            if (stripped.empty()) continue;
            current.line = number;
        }
        if (!stripped.empty() && stripped.back() == '\\') {
            pending += stripped.substr(0, stripped.size() - 1) + " ";
            continue;
        }
        pending += stripped;
        finish();
    }
    finish();
    return out;
}

ContextFilter::ContextFilter(const std::string& context) {
    std::ifstream in(fs::path(context) / ".dockerignore");
    for (std::string line; std::getline(in, line);) {
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        const bool excludes = line[0] != '!';
        const std::vector<std::string> parts = path_parts(excludes ? line : trim(line.substr(1)));
        if (!parts.empty()) rules_.emplace_back(excludes, parts);
    }
}

bool ContextFilter::excluded(const std::string& relative) const {
    const std::vector<std::string> path = path_parts(relative);
    bool out = false;
    for (const auto& [excludes, pattern] : rules_)
        if (matches_prefix(pattern, 0, path, 0)) out = excludes;
    return out;
}

bool ContextFilter::has_exceptions() const {
    return std::any_of(rules_.begin(), rules_.end(), [](const auto& rule) { return !rule.first; });
}

std::vector<std::string> DockerImageConfig::argv() const {
    std::vector<std::string> out = entrypoint;
    out.insert(out.end(), cmd.begin(), cmd.end());
    return out;
}

namespace {

std::string read_dockerfile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DockerfileError(path + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

std::vector<std::string> dockerfile_base_images(const std::string& path,
                                                const std::map<std::string, std::string>& build_args) {
    std::map<std::string, std::string> globals;
    std::set<std::string> stages;
    std::vector<std::string> out;
    bool from_seen = false;
    for (const DockerInstruction& in : parse_dockerfile(read_dockerfile(path), path)) {
        if (in.keyword == "ARG" && !from_seen) {
            for (const std::string& word : words(in.text, path, in.line)) {
                const size_t equals = word.find('=');
                const std::string name = word.substr(0, equals);
                auto given = build_args.find(name);
                globals[name] = given != build_args.end()     ? given->second
                                : equals != std::string::npos ? expand(word.substr(equals + 1), globals, path, in.line)
                                                              : "";
            }
        } else if (in.keyword == "FROM") {
            from_seen = true;
            const std::vector<std::string> list = words(expand(in.text, globals, path, in.line), path, in.line);
            if (list.empty()) continue;
            if (list[0] != "scratch" && !stages.count(lower(list[0]))) out.push_back(list[0]);
            if (list.size() == 3) stages.insert(lower(list[2]));
        }
    }
    return out;
}

DockerBuild build_dockerfile(const std::string& path, const std::string& context,
                             const std::map<std::string, std::string>& build_args, BuildSandbox sandbox,
                             const BaseImageResolver& resolve) {
    const std::string text = read_dockerfile(path);
    try {
        return Builder(path, context, build_args, sandbox, resolve).build(parse_dockerfile(text, path));
    } catch (const RootfsError& e) {
        throw DockerfileError(path + ": " + e.what());
    } catch (const fs::filesystem_error& e) {
        throw DockerfileError(path + ": " + e.what());
    }
}

bool is_dockerfile_name(const std::string& path) {
    const std::string name = lower(fs::path(path).filename().string());
    return name == "dockerfile" || name.rfind("dockerfile.", 0) == 0 ||
           (name.size() > 11 && name.compare(name.size() - 11, 11, ".dockerfile") == 0);
}

}  // namespace kiln::images
