// kiln volume create|ls|inspect|rm|clone, and what `kiln run -v` and `kiln compose up` share:
// named volumes made on first use, as docker makes them.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "volumes/volume_spec.h"

namespace kiln::cli {

class Client;

void add_volume_commands(CLI::App& app);

// The API's `volumes` of an instance's create for these specs: [{name, at, readonly}].
nlohmann::json volumes_field(const std::vector<volumes::VolumeSpec>& specs);

// Creates each of `names` that kilnd does not have, `size_mb` MiB large.
void ensure_volumes(Client& client, const std::vector<std::string>& names, int64_t size_mb);

}  // namespace kiln::cli
