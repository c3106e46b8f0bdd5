// kiln: Kiln's command line, shaped like docker's. Errors are one line on stderr and exit 1.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "client.h"
#include "compose_commands.h"
#include "image_commands.h"
#include "instance_commands.h"
#include "registry_commands.h"
#include "service_commands.h"
#include "volume_commands.h"

int main(int argc, char** argv) {
    CLI::App app{"kiln: build and run applications as Kiln unikernels"};
    app.require_subcommand(1);
    int status = 0;
    kiln::cli::Remote remote;
    if (const char* host = std::getenv("KILN_HOST")) remote.host = host;
    if (const char* token = std::getenv("KILN_TOKEN")) remote.token = token;
    app.add_option("--host", remote.host,
                   "a remote kilnd, like https://10.0.0.2:7070 (default: KILN_HOST, else local)");
    app.add_option("--token", remote.token, "its bearer token (default: KILN_TOKEN)");
    if (const char* ca = std::getenv("KILN_CA_CERT")) remote.ca_cert = ca;
    app.add_option("--cacert", remote.ca_cert,
                   "for an https:// host: the CA certificate to trust (default: KILN_CA_CERT)");
    app.parse_complete_callback([&remote] { kiln::cli::set_remote(remote); });
    kiln::cli::add_image_commands(app);
    kiln::cli::add_instance_commands(app, status);
    kiln::cli::add_registry_commands(app);
    kiln::cli::add_service_commands(app);
    kiln::cli::add_compose_commands(app);
    kiln::cli::add_volume_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "kiln: %s (kiln --help)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kiln: %s\n", e.what());
        return 1;
    }
    return status;
}
