// The kernel command line kiln-vmm passes: the user's, with kiln-vmm's own parameters added
// before any `--` (ARCHITECTURE.md §3: after `--` come the application's arguments, untouched).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::vmm {

// Throws VmmError on an unterminated double quote.
std::string compose_cmdline(const std::string& user, const std::vector<std::string>& vmm_params);

// The guest's IPv4 address from the kernel parameters (`kiln.ip=A.B.C.D[/N]` before any `--`),
// in network byte order; 0 if there is none or it is not an address (the kernel says why).
// Throws VmmError on an unterminated double quote, as compose_cmdline does.
uint32_t guest_ipv4(const std::string& user);

}  // namespace kiln::vmm
