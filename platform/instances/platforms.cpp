#include "instances/platforms.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "host/unique_fd.h"

namespace kiln::instances {
namespace fs = std::filesystem;

namespace {

PlatformSupport missing(std::string why) { return {false, std::move(why)}; }

PlatformSupport detect_kvm(const std::string& kiln_vmm) {
    if (::access(kiln_vmm.c_str(), X_OK) != 0) return missing("no kiln-vmm at " + kiln_vmm);
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm.valid()) return missing(std::string("/dev/kvm: ") + std::strerror(errno));
    UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
    if (!vm.valid()) return missing(std::string("/dev/kvm cannot make a VM: ") + std::strerror(errno));
    return {true, {}};
}

PlatformSupport detect_proc(const std::string& kiln_proc) {
    if (::access(kiln_proc.c_str(), X_OK) != 0) return missing("no kiln-proc at " + kiln_proc);
    const fs::path dir = fs::path(kiln_proc).parent_path();
    std::error_code error;
    if (!fs::exists(dir / "kiln-proc.elf", error) && !fs::exists(dir / ".." / "kernel" / "kiln-proc.elf", error))
        return missing("no kiln-proc.elf (the proc kernel) beside " + kiln_proc);
    // Switching dispatch off is a no-op that only a kernel with Syscall User Dispatch accepts.
    if (::prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) != 0)
        return missing("the host kernel has no Syscall User Dispatch (Linux 5.11 or later)");
    return {true, {}};
}

}  // namespace

const PlatformSupport& HostPlatforms::of(const std::string& platform) const {
    if (platform == kPlatformKvm) return kvm;
    if (platform == kPlatformProc) return proc;
    throw std::invalid_argument("platform '" + platform + "': expected kvm or proc");
}

nlohmann::json HostPlatforms::to_json() const {
    const auto one = [](const PlatformSupport& p) {
        nlohmann::json j = {{"available", p.available}};
        if (!p.available) j["reason"] = p.missing;
        return j;
    };
    return {{"platforms", {{kPlatformKvm, one(kvm)}, {kPlatformProc, one(proc)}}},
            {"default_platform", default_platform}};
}

HostPlatforms detect_platforms(const std::string& kiln_vmm, const std::string& kiln_proc, const std::string& choice) {
    HostPlatforms host;
    host.kvm = detect_kvm(kiln_vmm);
    host.proc = detect_proc(kiln_proc);
    if (choice == "auto") {
        host.default_platform = host.kvm.available ? kPlatformKvm : host.proc.available ? kPlatformProc : "";
    } else {
        const PlatformSupport& chosen = host.of(choice);
        if (!chosen.available)
            throw std::invalid_argument("platform " + choice + ": not on this host: " + chosen.missing);
        host.default_platform = choice;
    }
    return host;
}

}  // namespace kiln::instances
