// A container image (OCI or Docker v2 schema 2) as a Kiln image's root file system: its layers
// applied in order as an overlay file system would, and its config's command and environment.
//
// Whiteouts as the OCI image spec defines them: a layer's ".wh.NAME" removes NAME (and what is
// below it) from the layers under it, ".wh..wh..opq" empties its directory of what the layers
// under it put there. Hard links become copies (the rootfs format has none) and owners become
// root, as in every Kiln rootfs (rootfs.h); devices and fifos are left out.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "images/rootfs.h"

namespace kiln::images {

// The layers' tarballs (plain, gzip, zstd, xz: whatever libarchive reads), bottom first, as
// rootfs entries sorted by path with every parent directory present. `names` name the layers in
// errors. Throws RootfsError naming the layer and the entry.
std::vector<RootfsEntry> unpack_layers(const std::vector<std::string>& layers, const std::vector<std::string>& names);

// What a container image's config says about running it.
struct ContainerConfig {
    std::vector<std::string> cmd;         // Entrypoint, then Cmd
    std::vector<std::string> entrypoint;  // Entrypoint alone (a Dockerfile's FROM keeps it)
    std::vector<std::string> env;         // NAME=VALUE
    std::string workdir;
    std::string user;                  // NAME|UID[:GROUP|GID], as the image says
    std::vector<std::string> exposed;  // "80/tcp"
    std::map<std::string, std::string> labels;
};
// Throws RootfsError if it is not a config, or is for another platform than linux/amd64.
ContainerConfig parse_container_config(const std::string& text);

}  // namespace kiln::images
