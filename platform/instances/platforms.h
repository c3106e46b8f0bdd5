// The platforms an instance can run on, and which of them this host has:
//   kvm   kiln-vmm: a microVM on /dev/kvm (a VM boundary)
//   proc  kiln-proc: the kernel as a confined Linux process (a seccomp allowlist, as Solo5's spt);
//         needs no virtualization, only Linux 5.11+ (Syscall User Dispatch)
// kilnd finds them once at start (`kilnd --platform auto|kvm|proc`, or KILN_PLATFORM), reports
// them in GET /v1/info, and gives each instance one: asked for, or the default.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kiln::instances {

inline constexpr const char* kPlatformKvm = "kvm";
inline constexpr const char* kPlatformProc = "proc";

struct PlatformSupport {
    bool available = false;
    std::string missing;  // why not, when not available
};

struct HostPlatforms {
    PlatformSupport kvm, proc;
    std::string default_platform;  // kvm or proc; empty when the host has neither

    // Throws std::invalid_argument for a name that is neither kvm nor proc.
    const PlatformSupport& of(const std::string& platform) const;
    nlohmann::json to_json() const;
};

// Looks at the host: kvm if /dev/kvm opens and makes a VM and kiln-vmm is there; proc if
// kiln-proc and its kernel are there and the host kernel has Syscall User Dispatch. `choice` is
// "auto" (kvm where it works, else proc) or the one to use by default, which must be available.
// Throws std::invalid_argument naming what is wrong.
HostPlatforms detect_platforms(const std::string& kiln_vmm, const std::string& kiln_proc, const std::string& choice);

}  // namespace kiln::instances
