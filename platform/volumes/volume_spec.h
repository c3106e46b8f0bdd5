// Volumes as the command line, the API and the tenders spell them: sizes ("64M", "1G"), mount
// paths, `kiln run -v NAME:/path[:ro]`, and what an instance's start passes on: one
// `--volume path=FILE[,ro]` to its tender and one `kiln.volume=/path[:ro]` to its kernel per
// attached volume, in the same order (device i is mounted at the i-th kiln.volume path).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::volumes {

// A volume is at least this large (mke2fs's journal and the tables of an ext4 with 4 KiB blocks).
inline constexpr int64_t kMinSizeMb = 8;
inline constexpr int64_t kMaxSizeMb = int64_t{1} << 20;  // 1 TiB
inline constexpr int64_t kDefaultSizeMb = 256;

// "64M", "1G", "1Gi", "512MB", "1T", "100" (MiB) -> MiB, rounded up; between kMinSizeMb and
// kMaxSizeMb. Throws std::invalid_argument naming `text`.
int64_t parse_size_mb(const std::string& text);

// An absolute mount path, normalized ("/data/", "/a/./b" -> "/data", "/a/b"): not "/", no ':', no
// white space, no quotes, no "..". Throws std::invalid_argument saying why.
std::string normalize_mount_path(const std::string& path);

// Whether one instance may have volumes at both `a` and `b` (normalized mount paths): not at one
// path, and not one inside the other (the kernel refuses that, and would hide the outer volume's
// directory). Empty if it may, else why not: "two volumes at /data", "/data/logs lies inside the
// volume at /data".
std::string mount_conflict(const std::string& a, const std::string& b);

// `kiln run -v` and a compose service's `volumes:` entry: NAME:/path, NAME:/path:ro or
// NAME:/path:rw. Throws std::invalid_argument naming `text`.
struct VolumeSpec {
    std::string name, at;
    bool readonly = false;
};
VolumeSpec parse_volume_spec(const std::string& text);

// One attached volume as an instance's start needs it.
struct VolumeMount {
    std::string file;  // the ext4 image on the host
    std::string at;    // the mount path in the guest (normalized)
    bool readonly = false;
};

// `--volume path=FILE[,ro]` for each, in order: the tender's flags.
std::vector<std::string> tender_volume_flags(const std::vector<VolumeMount>& mounts);
// `kiln.volume=/path[:ro]` for each, in order, space-separated (empty for none): the kernel's
// parameters, which go before the command line's `--`.
std::string kernel_volume_parameters(const std::vector<VolumeMount>& mounts);

}  // namespace kiln::volumes
