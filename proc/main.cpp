// kiln-proc: one Linux process (and its supervisor) per Kiln instance, where there is no
// hardware virtualization. Its command line and exit statuses are kiln-vmm's
// (../shared/INTERFACES.md), so kilnd can drive both alike.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "host/tender_orders.h"
#include "host_clock.h"
#include "kiln/hostcall.h"
#include "options.h"
#include "sandbox.h"
#include "tender.h"
#include "util/error.h"

int main(int argc, char** argv) {
    kiln::proc::start_measuring_host_clock();
    // A tender started ahead of need forks its instance process ahead too (kilnd moves both into
    // the instance's cgroups with the orders): no fork is left on a wake's path.
    std::unique_ptr<kiln::proc::InstanceProcess> instance_process;
    kiln::host::TenderArguments arguments(argc, argv, [&instance_process] {  // or kilnd's orders
        try {
            instance_process = std::make_unique<kiln::proc::InstanceProcess>();
        } catch (const kiln::vmm::VmmError&) {
            // The tender forks when its orders come.
        }
        kiln::vmm::warm_up_options(kiln::vmm::Monitor::kProc);
        try {
            (void)kiln::proc::instance_filter({3, 1, 4, 5, 6});
            (void)kiln::proc::read_host_clock();  // the TSC's rate, measured once
        } catch (const kiln::vmm::VmmError&) {
            // The real one will say what is wrong.
        }
    });
    if (arguments.dismissed()) return *arguments.dismissed();
    const kiln::vmm::Options options =
        kiln::vmm::parse_options(arguments.argc(), arguments.argv(), kiln::vmm::Monitor::kProc);
    std::signal(SIGPIPE, SIG_IGN);  // a console whose reader went away is not fatal
    // SIGTERM and SIGINT are the supervisor's to handle (a signalfd, supervisor.cpp), from before
    // the instance process exists (the Tender forks it): one that comes early waits for it.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    int status;
    try {
        kiln::proc::Tender tender(options, std::move(instance_process));
        status = tender.run();
    } catch (const kiln::vmm::VmmError& e) {
        std::cerr << "kiln-proc: " << e.what() << "\n";
        status = kiln::abi::kExitVmmError;
    }
    if (!options.status_file.empty()) {
        const std::string temporary = options.status_file + ".tmp";
        FILE* f = std::fopen(temporary.c_str(), "w");
        if (f == nullptr || std::fprintf(f, "%d\n", status) < 0 || std::fclose(f) != 0 ||
            std::rename(temporary.c_str(), options.status_file.c_str()) != 0)
            std::cerr << "kiln-proc: --status-file " << options.status_file << ": cannot write it\n";
    }
    return status;
}
