#include "volumes/volume_spec.h"

#include <cctype>
#include <filesystem>
#include <stdexcept>

#include "images/kraftfile.h"

namespace kiln::volumes {

int64_t parse_size_mb(const std::string& text) {
    const std::invalid_argument bad("size '" + text + "': a volume size is like 64M, 512M or 1G (at least " +
                                    std::to_string(kMinSizeMb) + "M, at most 1T)");
    size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == 0 || digits > 15) throw bad;
    const int64_t value = std::stoll(text.substr(0, digits));
    std::string unit = text.substr(digits);
    if (unit.size() >= 2 && (unit.substr(1) == "i" || unit.substr(1) == "B" || unit.substr(1) == "b" ||
                             unit.substr(1) == "iB" || unit.substr(1) == "ib"))
        unit.resize(1);
    // In KiB, then rounded up to MiB.
    int64_t kib = 0;
    if (unit.empty() || unit == "M" || unit == "m") {
        kib = value * 1024;
    } else if (unit == "K" || unit == "k") {
        kib = value;
    } else if (unit == "G" || unit == "g") {
        kib = value * 1024 * 1024;
    } else if (unit == "T" || unit == "t") {
        if (value > 1) throw bad;
        kib = value * 1024 * 1024 * 1024;
    } else {
        throw bad;
    }
    const int64_t mb = (kib + 1023) / 1024;
    if (mb < kMinSizeMb || mb > kMaxSizeMb) throw bad;
    return mb;
}

std::string normalize_mount_path(const std::string& path) {
    const auto bad = [&](const std::string& why) { return std::invalid_argument("mount path '" + path + "': " + why); };
    if (path.empty() || path[0] != '/') throw bad("must be absolute (like /data)");
    for (char c : path) {
        if (c == ':' || c == '"' || c == '\'' || c == '\\' || c == ',' || c == '=')
            throw bad(std::string("must not hold '") + c + "'");
        if (std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c)))
            throw bad("must not hold white space or control characters");
    }
    if (path.size() > 255) throw bad("is longer than 255 characters");
    for (const auto& part : std::filesystem::path(path))
        if (part == "..") throw bad("must not hold '..'");
    std::string normal = std::filesystem::path(path).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    if (normal == "/") throw bad("a volume cannot be mounted over the root file system");
    return normal;
}

std::string mount_conflict(const std::string& a, const std::string& b) {
    if (a == b) return "two volumes at " + a;
    const auto inside = [](const std::string& inner, const std::string& outer) {
        return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '/';
    };
    if (inside(b, a)) return b + " lies inside the volume at " + a;
    if (inside(a, b)) return a + " lies inside the volume at " + b;
    return {};
}

VolumeSpec parse_volume_spec(const std::string& text) {
    const auto first = text.find(':');
    if (first == std::string::npos || first == 0)
        throw std::invalid_argument("-v " + text + ": expected NAME:/path or NAME:/path:ro");
    VolumeSpec spec;
    spec.name = text.substr(0, first);
    if (spec.name[0] == '/' || spec.name[0] == '.')
        throw std::invalid_argument("-v " + text +
                                    ": Kiln mounts named volumes, not host directories (kiln volume create NAME)");
    if (!images::valid_name(spec.name))
        throw std::invalid_argument("-v " + text + ": '" + spec.name +
                                    "' is not a valid volume name (lower-case letters, digits, '.', '_', '-'; at most "
                                    "63)");
    std::string at = text.substr(first + 1);
    if (const auto second = at.find(':'); second != std::string::npos) {
        const std::string mode = at.substr(second + 1);
        if (mode != "ro" && mode != "rw") throw std::invalid_argument("-v " + text + ": the mode is ro or rw");
        spec.readonly = mode == "ro";
        at.resize(second);
    }
    try {
        spec.at = normalize_mount_path(at);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("-v " + text + ": " + e.what());
    }
    return spec;
}

std::vector<std::string> tender_volume_flags(const std::vector<VolumeMount>& mounts) {
    std::vector<std::string> flags;
    for (const auto& m : mounts) {
        flags.push_back("--volume");
        flags.push_back("path=" + m.file + (m.readonly ? ",ro" : ""));
    }
    return flags;
}

std::string kernel_volume_parameters(const std::vector<VolumeMount>& mounts) {
    std::string line;
    for (const auto& m : mounts) {
        if (!line.empty()) line += ' ';
        line.append("kiln.volume=").append(m.at).append(m.readonly ? ":ro" : "");
    }
    return line;
}

}  // namespace kiln::volumes
