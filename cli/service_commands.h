// kiln service create|ls|inspect|rm: services (public ports balanced over instances) on kilnd.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::cli {

void add_service_commands(CLI::App& app);

}  // namespace kiln::cli
