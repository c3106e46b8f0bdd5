// kiln run, ps, logs, stop, start, rm, inspect: instances, through kilnd's API.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::cli {

// Adds the instance commands to `app`. `exit_status` receives the status kiln should exit with
// (kiln run attached: the application's).
void add_instance_commands(CLI::App& app, int& exit_status);

// The API's service_group for `-p HOST:GUEST[/http]` flags: {"services": [{port, destination_port,
// handlers}, ...]}. Throws std::invalid_argument naming a flag that is not of that form.
nlohmann::json service_group(const std::vector<std::string>& publish);

// "1s", "500ms", "2m", or milliseconds -> milliseconds; throws std::invalid_argument naming `flag`.
int64_t parse_duration_ms(const std::string& text, const std::string& flag);

}  // namespace kiln::cli
