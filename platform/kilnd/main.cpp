// kilnd: Kiln's platform daemon. One per state directory (KILN_STATE_DIR, default /var/lib/kiln):
// its REST API on STATE/kilnd.sock, its state in STATE/kiln.db, one kiln-vmm per running
// instance. Instances outlive kilnd: killed and started again, it finds them where it left them.
#include <sys/file.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "api/server.h"
#include "network/dns_server.h"
#include "network/private_network.h"
#include "services/controller.h"
#include "services/service_store.h"
#include "store/sqlite.h"

namespace fs = std::filesystem;

namespace {

std::atomic<kiln::api::Server*> running_server{nullptr};
std::atomic<kiln::api::Server*> running_tcp_server{nullptr};

void on_signal(int) {
    if (auto* server = running_server.load()) server->stop();
    if (auto* server = running_tcp_server.load()) server->stop();
}

// "HOST:PORT" -> (host, port); throws std::invalid_argument naming the text.
std::pair<std::string, int> parse_listen(const std::string& text) {
    const auto colon = text.rfind(':');
    int port = 0;
    try {
        port = colon == std::string::npos ? 0 : std::stoi(text.substr(colon + 1));
    } catch (const std::exception&) {
    }
    if (colon == 0 || port <= 0 || port > 65535)
        throw std::invalid_argument("--listen " + text + ": expected HOST:PORT");
    return {text.substr(0, colon), port};
}

// The token: the file's first line.
std::string read_token(const std::string& path) {
    std::ifstream in(path);
    std::string token;
    if (!in || !std::getline(in, token) || token.size() < 16)
        throw std::invalid_argument("--token-file " + path + ": cannot read a token of at least 16 characters");
    return token;
}

std::string state_dir() {
    const char* dir = std::getenv("KILN_STATE_DIR");
    return dir && *dir ? dir : "/var/lib/kiln";
}

// kiln-vmm and kiln-proc sit next to kilnd (build/bin/ in a build tree).
std::string tender_path(const char* variable, const char* name) {
    if (const char* path = std::getenv(variable); path && *path) return path;
    return (fs::read_symlink("/proc/self/exe").parent_path() / name).string();
}

// Restart back-off for tests: KILN_BACKOFF_MS=0,50,100 replaces the schedule.
std::vector<std::chrono::milliseconds> backoff_from_env(std::vector<std::chrono::milliseconds> fallback) {
    const char* text = std::getenv("KILN_BACKOFF_MS");
    if (!text || !*text) return fallback;
    std::vector<std::chrono::milliseconds> out;
    std::string list = text;
    for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        out.emplace_back(std::stoll(list.substr(at, comma - at)));
        at = comma + 1;
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"kilnd: Kiln's platform daemon (API on STATE/kilnd.sock; STATE is KILN_STATE_DIR or /var/lib/kiln)"};
    std::string listen, token_file, tls_cert, tls_key;
    app.add_option("--listen", listen, "also serve the API on TCP at HOST:PORT, with a bearer token");
    app.add_option("--token-file", token_file, "the bearer token for --listen (its first line)");
    app.add_option("--tls-cert", tls_cert, "serve --listen over TLS with this PEM certificate (chain)");
    app.add_option("--tls-key", tls_key, "and this PEM private key");
    // kiln starts kilnd on demand, so the environment can choose too.
    const char* platform_env = std::getenv("KILN_PLATFORM");
    std::string platform = platform_env && *platform_env ? platform_env : "auto";
    app.add_option("--platform", platform,
                   "the instances' default platform: kvm (microVMs), proc (confined processes) or auto (kvm where "
                   "/dev/kvm works, else proc); also KILN_PLATFORM")
        ->check(CLI::IsMember({"auto", "kvm", "proc"}));
    size_t prepared_wakes = kiln::instances::SupervisorOptions{}.prepared_wakes;
    app.add_option("--prepared-wakes", prepared_wakes,
                   "proc instances in standby whose restore is made ready ahead of their wake, the most recently "
                   "idled first (0: none)")
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    // A tender's own children (kiln-proc's instance) that outlive it become kilnd's, which reaps
    // them: PID 1 here reaps orphans late, and a stop waits until they are gone
    // (instances/supervisor.cpp, wait_for_group).
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    // SIGCHLD is the reconciler's, which waits for it (sigtimedwait): blocked in every thread,
    // all of which start after this.
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    ::pthread_sigmask(SIG_BLOCK, &child, nullptr);
    const std::string dir = state_dir();
    try {
        std::optional<std::pair<std::string, int>> tcp;
        std::string token;
        if (!listen.empty()) {
            if (token_file.empty())
                throw std::invalid_argument("--listen needs --token-file: TCP clients must prove who they are");
            tcp = parse_listen(listen);
            token = read_token(token_file);
        }
        if (tls_cert.empty() != tls_key.empty()) throw std::invalid_argument("--tls-cert and --tls-key go together");
        if (!tls_cert.empty() && listen.empty()) throw std::invalid_argument("--tls-cert is for --listen");
        fs::create_directories(dir);
        // One kilnd per state directory: the lock dies with the process, however it ends.
        const int lock = ::open((dir + "/kilnd.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock < 0 || ::flock(lock, LOCK_EX | LOCK_NB) != 0) {
            std::fprintf(stderr, "kilnd: another kilnd serves %s\n", dir.c_str());
            return 1;
        }
        kiln::store::Database db(dir + "/kiln.db");
        kiln::images::ImageStore images(dir);
        kiln::instances::InstanceStore instances(db);
        kiln::services::ServiceStore services(db);
        kiln::volumes::VolumeStore volumes(db, dir);
        // The private network needs CAP_NET_ADMIN; without it kilnd still runs instances, with no
        // network card and no services, and says why.
        std::unique_ptr<kiln::network::PrivateNetwork> network;
        std::string no_network;
        try {
            network = std::make_unique<kiln::network::PrivateNetwork>(dir);
        } catch (const std::exception& e) {
            no_network = e.what();
            std::fprintf(stderr, "kilnd: no private network (%s): instances get no network, services are refused\n",
                         e.what());
        }
        kiln::services::Controller* controller = nullptr;  // set below, once the supervisor exists
        kiln::instances::SupervisorOptions options;
        options.state_dir = dir;
        options.kiln_vmm = tender_path("KILN_VMM", "kiln-vmm");
        options.kiln_proc = tender_path("KILN_PROC", "kiln-proc");
        const kiln::instances::HostPlatforms platforms =
            kiln::instances::detect_platforms(options.kiln_vmm, options.kiln_proc, platform);
        if (platforms.default_platform.empty())
            std::fprintf(stderr, "kilnd: no platform for instances here: kvm: %s; proc: %s\n",
                         platforms.kvm.missing.c_str(), platforms.proc.missing.c_str());
        options.backoff = backoff_from_env(options.backoff);
        // Where the host's cgroups are (instances/cgroups.h); a path without them runs instances
        // without CPU shares and task caps, and says so.
        if (const char* root = std::getenv("KILN_CGROUP_ROOT"); root && *root) options.cgroup_root = root;
        for (const char* p : {kiln::instances::kPlatformKvm, kiln::instances::kPlatformProc})
            if (platforms.of(p).available) options.waiting_tenders.push_back(p);
        options.network = network.get();
        options.prepared_wakes = prepared_wakes;
        options.on_started = [&controller](const kiln::instances::Instance& i) {
            if (controller) controller->instance_started(i);
        };
        options.on_ended = [&controller](const kiln::instances::Instance& i) {
            if (controller) controller->instance_ended(i);
        };
        options.volumes = [&volumes](const kiln::instances::Instance& i) { return volumes.mounts_of(i.uuid); };
        kiln::instances::Supervisor supervisor(options, instances, images);
        kiln::api::State state{{},      images,     instances, supervisor, services,
                               nullptr, no_network, platforms, &volumes,   dir};
        std::unique_ptr<kiln::services::Controller> services_controller;
        std::unique_ptr<kiln::network::DnsServer> dns;
        if (network) {
            services_controller = std::make_unique<kiln::services::Controller>(
                kiln::services::ControllerParts{state.mutex, instances, services, supervisor, *network});
            dns = std::make_unique<kiln::network::DnsServer>(
                network->ns(), network->gateway(), [&state](const std::string& name) -> std::optional<uint32_t> {
                    std::lock_guard guard(state.mutex);
                    const auto instance = state.instances.find(name);
                    if (!instance || instance->ip.empty()) return std::nullopt;
                    return kiln::network::parse_ipv4(instance->ip);
                });
        }
        {
            std::lock_guard guard(state.mutex);
            controller = services_controller.get();
            state.controller = controller;
            supervisor.adopt_or_kill_strays();  // what happened while kilnd was away
            supervisor.reconcile();
            if (controller) {
                for (const auto& service : services.list()) {
                    try {
                        controller->open(service);
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "kilnd: service %s: %s\n", service.name.c_str(), e.what());
                    }
                }
                // Ready events are lasting: watching a running instance again finds it ready.
                for (const auto& instance : instances.list())
                    if (instance.state == kiln::instances::kRunning) controller->instance_started(instance);
            }
        }

        // The servers before any thread: a bad TLS certificate ends kilnd here, with its message.
        kiln::api::Server server(state);
        std::optional<kiln::api::Server> tcp_server;
        if (tcp && tls_cert.empty()) tcp_server.emplace(state, token);
        if (tcp && !tls_cert.empty()) tcp_server.emplace(state, token, tls_cert, tls_key);

        std::atomic<bool> done{false};
        // Every 50 ms, and at once when a tender ends (SIGCHLD, taken on this thread alone): an
        // instance that exits is seen stopped, and its attached `kiln run` ends, without waiting
        // for the next round; sooner when the pool of waiting tenders is due its refill.
        std::thread reconciler([&] {
            std::chrono::nanoseconds wait = std::chrono::milliseconds(50);
            while (!done) {
                const timespec round{0, static_cast<long>(wait.count())};
                const bool ended = ::sigtimedwait(&child, nullptr, &round) == SIGCHLD;
                {
                    std::lock_guard guard(state.mutex);
                    try {
                        supervisor.reconcile();
                    } catch (const std::exception& e) {
                        std::fprintf(stderr, "kilnd: %s\n", e.what());
                    }
                    wait = supervisor.next_round(std::chrono::milliseconds(50));
                }
                if (ended) state.changed();
            }
        });
        running_server = &server;
        std::thread tcp_thread;
        std::atomic<bool> tcp_done{false};
        if (tcp) {
            running_tcp_server = &*tcp_server;
            tcp_thread = std::thread([&] {
                if (!tcp_server->listen_tcp(tcp->first, tcp->second)) {
                    std::fprintf(stderr, "kilnd: cannot listen on %s\n", listen.c_str());
                    server.stop();
                }
                tcp_done = true;
            });
        }
        std::signal(SIGTERM, on_signal);
        std::signal(SIGINT, on_signal);
        std::signal(SIGPIPE, SIG_IGN);
        const std::string socket = dir + "/kilnd.sock";
        std::fprintf(stderr, "kilnd: serving %s on %s\n", dir.c_str(), socket.c_str());
        const bool served = server.listen_unix(socket);
        running_server = nullptr;
        if (tcp_server) {
            running_tcp_server = nullptr;
            // A stop() that came before its listen() began is lost: repeat until it ends.
            while (!tcp_done) {
                tcp_server->stop();
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            tcp_thread.join();
        }
        done = true;
        reconciler.join();
        dns.reset();
        services_controller.reset();
        if (network) {
            // Guests outlive kilnd, and so does their network; with none left it goes too.
            std::lock_guard guard(state.mutex);
            controller = nullptr;
            bool guests = false;
            for (const auto& instance : instances.list())
                guests = guests ||
                         (instance.state != kiln::instances::kStopped && instance.state != kiln::instances::kStandby);
            if (!guests) network->destroy();
        }
        ::unlink(socket.c_str());
        if (!served) {
            std::fprintf(stderr, "kilnd: cannot listen on %s\n", socket.c_str());
            return 1;
        }
        return 0;  // instances keep running: the next kilnd finds them
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kilnd: %s\n", e.what());
        return 1;
    }
}
