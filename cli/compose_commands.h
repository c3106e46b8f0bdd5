// kiln compose up, down, ps, logs: a compose file's services as instances on kilnd, each named
// after its service, so that they reach each other as <service>.internal on Kiln's private network.
#pragma once

#include <CLI/CLI.hpp>

namespace kiln::cli {

void add_compose_commands(CLI::App& app);

}  // namespace kiln::cli
