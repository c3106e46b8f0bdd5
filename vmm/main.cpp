// kiln-vmm: one process per microVM. Its exit status is the guest's (abi/kiln/hostcall.h lists
// the few statuses kiln-vmm adds of its own).
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "host/tender_orders.h"
#include "kiln/hostcall.h"
#include "machine.h"
#include "options.h"
#include "util/error.h"

namespace {

// Written to a temporary name and renamed: a reader sees the whole status or none.
void write_status_file(const std::string& path, int status) {
    if (path.empty()) return;
    const std::string temporary = path + ".tmp";
    if (FILE* f = std::fopen(temporary.c_str(), "w")) {
        std::fprintf(f, "%d\n", status);
        if (std::fclose(f) == 0 && std::rename(temporary.c_str(), path.c_str()) == 0) return;
    }
    std::cerr << "kiln-vmm: --status-file " << path << ": cannot write it\n";
}

int run(const kiln::vmm::Options& options) {
    try {
        kiln::vmm::Machine machine(options);
        return machine.run();
    } catch (const kiln::vmm::VmmError& e) {
        std::cerr << "kiln-vmm: " << e.what() << "\n";
        return kiln::abi::kExitVmmError;
    }
}

}  // namespace

int main(int argc, char** argv) {
    kiln::host::TenderArguments arguments(argc, argv, [] {  // or kilnd's orders (host/tender_orders.h)
        kiln::vmm::warm_up_options(kiln::vmm::Monitor::kVmm);
    });
    if (arguments.dismissed()) return *arguments.dismissed();
    const kiln::vmm::Options options = kiln::vmm::parse_options(arguments.argc(), arguments.argv());
    std::signal(SIGPIPE, SIG_IGN);  // a console or socket peer that went away is not fatal
    const int status = run(options);
    write_status_file(options.status_file, status);
    return status;
}
