// A compose file (docker compose's format, the part Kiln can honour), read and checked. Each
// service becomes one instance named after it. Every error names the file, the line where the
// offending entry starts, and the key:
//
//   compose.yaml:7: services.web.ports: '80:80/udp': Kiln publishes TCP ports only
//
// Keys Kiln cannot honour (networks, healthcheck, ...) are errors, never silently ignored;
// only `version` and extension keys (x-...) are.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "volumes/volume_spec.h"

namespace kiln::cli {

class ComposeError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct ComposeService {
    std::string name;                  // the service's key, which is also its instance's name
    std::string image;                 // a reference like web:latest; with `build`, the tag to build (may be empty)
    std::string build;                 // absolute: the directory holding the Kraftfile to build; empty without `build`
    std::vector<std::string> command;  // replaces the image's cmd, program included; empty: the image's
    std::vector<std::string> environment;  // NAME=VALUE, in the file's order
    std::vector<std::string> ports;        // "HOST:GUEST"
    std::optional<int64_t> memory_mb;      // from mem_limit, rounded up to whole MiB; unset: the image's
    std::optional<int64_t> cpu_shares;     // Docker's relative CPU weight; unset: kilnd's default
    std::optional<int64_t> pids_limit;     // the cap on its host tasks; unset: kilnd's default
    std::vector<std::string> depends_on;   // names of services in the same file
    std::string restart = "never";         // kilnd's restart policy: never, always or on-failure
    // `volumes: ["NAME:/path[:ro]"]`: named volumes of the top-level `volumes`, in device order.
    std::vector<volumes::VolumeSpec> volumes;
};

// A top-level `volumes:` entry: a named volume, made by `up` unless it exists (or is `external`,
// then it must). `size` is Kiln's own key (a volume is an ext4 image file of that size).
struct ComposeVolume {
    std::string name;
    int64_t size_mb = volumes::kDefaultSizeMb;
    bool external = false;
};

struct ComposeFile {
    std::string path;  // as given
    std::string name;  // the top-level `name`, else the directory's name
    // Every service after the ones it depends on; otherwise in the file's order.
    std::vector<ComposeService> services;
    std::vector<ComposeVolume> volumes;  // in the file's order
};

// The compose file in `dir`: the first of compose.yaml, compose.yml, docker-compose.yaml,
// docker-compose.yml. Throws ComposeError if there is none.
std::string find_compose_file(const std::string& dir);

// Reads and checks `path`. Throws ComposeError. Looks at the file system only to read the file and
// to check that `build` directories exist.
ComposeFile parse_compose(const std::string& path);

// "64m", "1g", "128M", "512k", "1073741824" (bytes) -> MiB, rounded up. Throws
// std::invalid_argument if `text` is none of those.
int64_t parse_mem_limit(const std::string& text);

}  // namespace kiln::cli
