// The kernel command line kiln-vmm passes: the user's, with kiln-vmm's own parameters added
// before any `--` (ARCHITECTURE.md §3: after `--` come the application's arguments, untouched).
#pragma once

#include <string>
#include <vector>

namespace kiln::vmm {

// Throws VmmError on an unterminated double quote.
std::string compose_cmdline(const std::string& user, const std::vector<std::string>& vmm_params);

}  // namespace kiln::vmm
