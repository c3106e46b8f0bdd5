#include "images/dockerfile.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "images/kraftfile.h"

namespace kiln::images {
namespace fs = std::filesystem;

namespace {

// Docker's instructions that Kiln does not build, with why: refused by name.
const std::map<std::string, std::string>& refused_instructions() {
    static const std::map<std::string, std::string> refused = {
        {"RUN",
         "running commands while building needs a build sandbox, which Kiln does not have yet: "
         "run them beforehand and COPY their results"},
        {"SHELL", "there is no RUN to give a shell to"},
        {"ONBUILD", "Kiln's images are not built upon"},
        {"HEALTHCHECK", "Kiln checks an instance's readiness by its listening port"},
        {"STOPSIGNAL", "Kiln stops an instance as a whole"},
        {"VOLUME", "give volumes to `kiln run -v` instead"},
        {"MAINTAINER", "deprecated by Docker: use LABEL maintainer=..."},
    };
    return refused;
}

const std::set<std::string>& supported_instructions() {
    static const std::set<std::string> supported = {"FROM", "COPY", "ADD",   "ENV",        "ARG",   "WORKDIR",
                                                    "CMD",  "USER", "LABEL", "ENTRYPOINT", "EXPOSE"};
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

class Builder {
  public:
    Builder(std::string path, std::string context, const std::map<std::string, std::string>& build_args)
        : path_(std::move(path)), context_(fs::weakly_canonical(context)), filter_(context_.string()),
          build_args_(build_args) {}

    DockerBuild build(const std::vector<DockerInstruction>& instructions) {
        bool from_seen = false;
        for (const DockerInstruction& in : instructions) {
            if (!from_seen && in.keyword != "FROM" && in.keyword != "ARG")
                fail(path_, in.line, in.keyword + " before FROM: a Dockerfile starts with FROM (ARGs may come first)");
            if (in.keyword == "FROM") {
                if (from_seen)
                    fail(path_, in.line,
                         "a second FROM: Kiln builds one stage; multi-stage builds are not supported yet");
                from(in);
                from_seen = true;
            } else if (in.keyword == "ARG") {
                arg(in);
            } else if (in.keyword == "ENV") {
                for (auto& [name, value] : pairs(in, expand(in.text, variables_, path_, in.line), path_, true)) {
                    set_env(name, value);
                    variables_[name] = value;
                }
            } else if (in.keyword == "LABEL") {
                for (auto& [name, value] : pairs(in, expand(in.text, variables_, path_, in.line), path_, false))
                    result_.config.labels[name] = value;
            } else if (in.keyword == "WORKDIR") {
                workdir(in);
            } else if (in.keyword == "USER") {
                user(in);
            } else if (in.keyword == "EXPOSE") {
                expose(in);
            } else if (in.keyword == "CMD") {
                result_.config.cmd = command(in);
            } else if (in.keyword == "ENTRYPOINT") {
                result_.config.entrypoint = command(in);
                result_.config.cmd.clear();  // as Docker: an ENTRYPOINT resets the CMD before it
            } else {                         // COPY, ADD
                copy(in);
            }
        }
        if (!from_seen) fail(path_, 1, "no FROM: a Dockerfile starts with FROM");
        std::vector<RootfsEntry>& out = result_.entries;
        for (auto& [p, entry] : files_)
            if (p != "/") out.push_back(std::move(entry));  // the root is the archive itself
        return std::move(result_);
    }

  private:
    void from(const DockerInstruction& in) {
        const std::vector<std::string> list = words(expand(in.text, variables_, path_, in.line), path_, in.line);
        if (list.empty()) fail(path_, in.line, "FROM needs an image");
        if (list.size() != 1 && !(list.size() == 3 && upper(list[1]) == "AS"))
            fail(path_, in.line, "FROM takes an image and an optional 'AS name'");
        if (list[0] != "scratch")
            fail(path_, in.line,
                 "FROM " + list[0] +
                     ": Kiln builds from scratch only for now (base images from a registry are not "
                     "pulled yet): COPY the files the program needs");
        for (const auto& [flag, value] : in.flags) fail(path_, in.line, "FROM --" + flag + " is not supported");
        add_directory("/", 0755);
    }

    void arg(const DockerInstruction& in) {
        for (const std::string& word : words(in.text, path_, in.line)) {
            const size_t equals = word.find('=');
            const std::string name = word.substr(0, equals);
            if (name.empty()) fail(path_, in.line, "ARG needs a name");
            auto given = build_args_.find(name);
            if (given != build_args_.end())
                variables_[name] = given->second;
            else if (equals != std::string::npos)
                variables_[name] = expand(word.substr(equals + 1), variables_, path_, in.line);
            else
                variables_.emplace(name, "");
        }
    }

    void set_env(const std::string& name, const std::string& value) {
        auto& env = result_.config.env;
        auto it = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == name; });
        if (it != env.end())
            it->second = value;
        else
            env.emplace_back(name, value);
    }

    // A path in the image: absolute, or relative to WORKDIR.
    std::string image_path(const std::string& raw) const {
        const fs::path p = fs::path(raw).is_absolute() ? fs::path(raw) : fs::path(result_.config.workdir) / raw;
        std::string text = p.lexically_normal().string();
        // lexically_normal() already drops a ".." above the root, as Docker does ("/../etc" is "/etc").
        while (text.size() > 1 && text.back() == '/') text.pop_back();
        return text;
    }

    void workdir(const DockerInstruction& in) {
        const std::string dir = trim(expand(in.text, variables_, path_, in.line));
        if (dir.empty()) fail(path_, in.line, "WORKDIR needs a path");
        result_.config.workdir = image_path(dir);
        add_directory(result_.config.workdir, 0755);
    }

    void user(const DockerInstruction& in) {
        const std::string who = trim(expand(in.text, variables_, path_, in.line));
        const std::string name = who.substr(0, who.find(':'));
        if (name != "root" && name != "0")
            fail(path_, in.line,
                 "USER " + who + ": Kiln's applications run as root (uid 0) in their own instance for now");
    }

    void expose(const DockerInstruction& in) {
        for (std::string port : words(expand(in.text, variables_, path_, in.line), path_, in.line)) {
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
            result_.config.exposed.push_back(std::to_string(number) + "/" + protocol);
        }
    }

    // CMD and ENTRYPOINT: the JSON form as it is, the shell form through /bin/sh -c, as Docker.
    std::vector<std::string> command(const DockerInstruction& in) const {
        if (in.json_form) return in.json;
        const std::string text = trim(in.text);
        if (text.empty()) return {};
        return {"/bin/sh", "-c", text};
    }

    void copy(const DockerInstruction& in) {
        unsigned chmod = 0;
        for (const auto& [flag, value] : in.flags) {
            if (flag == "chmod") {
                char* end = nullptr;
                chmod = static_cast<unsigned>(std::strtoul(value.c_str(), &end, 8));
                if (value.empty() || *end != '\0' || chmod > 07777)
                    fail(path_, in.line, in.keyword + " --chmod=" + value + ": not an octal mode");
            } else if (flag == "chown") {
                const std::string owner = value.substr(0, value.find(':'));
                if (owner != "root" && owner != "0")
                    fail(path_, in.line, in.keyword + " --chown=" + value + ": Kiln's image files belong to root");
            } else if (flag == "from") {
                fail(path_, in.line, in.keyword + " --from: multi-stage builds are not supported yet");
            } else {
                fail(path_, in.line, in.keyword + " --" + flag + " is not supported");
            }
        }
        std::vector<std::string> list =
            in.json_form ? in.json : words(expand(in.text, variables_, path_, in.line), path_, in.line);
        if (in.json_form)
            for (std::string& s : list) s = expand(s, variables_, path_, in.line);
        if (list.size() < 2) fail(path_, in.line, in.keyword + " needs a source and a destination");
        const std::string destination = list.back();
        list.pop_back();
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
        auto it = files_.find(path);
        return it != files_.end() && (it->second.mode & S_IFMT) == S_IFDIR;
    }

    // `dir` and its parents, as directories: a file already at one of them is an error.
    void add_directory(const std::string& dir, unsigned permissions, int line = 0) {
        for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
            auto it = files_.find(p.string());
            if (it == files_.end())
                files_[p.string()] = {p.string(), S_IFDIR | permissions, {}};
            else if ((it->second.mode & S_IFMT) != S_IFDIR)
                fail(path_, line, p.string() + " is a file in the image, not a directory");
            if (p == "/") break;
        }
    }

    void put(RootfsEntry entry, const DockerInstruction& in) {
        if (is_directory_in_image(entry.path) && (entry.mode & S_IFMT) != S_IFDIR)
            fail(path_, in.line, in.keyword + ": " + entry.path + " is a directory in the image");
        add_directory(fs::path(entry.path).parent_path().string(), 0755, in.line);
        files_[entry.path] = std::move(entry);
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
    std::map<std::string, std::string> variables_;  // ARGs and ENVs so far
    std::map<std::string, RootfsEntry> files_;      // the image's files by path
    DockerBuild result_;
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

DockerBuild build_dockerfile(const std::string& path, const std::string& context,
                             const std::map<std::string, std::string>& build_args) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw DockerfileError(path + ": cannot read it");
    std::stringstream text;
    text << in.rdbuf();
    try {
        return Builder(path, context, build_args).build(parse_dockerfile(text.str(), path));
    } catch (const RootfsError& e) {
        throw DockerfileError(path + ": " + e.what());
    } catch (const fs::filesystem_error& e) {
        throw DockerfileError(path + ": " + e.what());
    }
}

bool is_dockerfile_name(const std::string& path) {
    const std::string name = fs::path(path).filename().string();
    const std::string lower = [&] {
        std::string s = name;
        for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }();
    return lower == "dockerfile" || lower.rfind("dockerfile.", 0) == 0 ||
           (lower.size() > 11 && lower.compare(lower.size() - 11, 11, ".dockerfile") == 0);
}

}  // namespace kiln::images
