#include "compose_commands.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string_view>
#include <thread>

#include "client.h"
#include "compose_file.h"
#include "image_commands.h"
#include "images/image_store.h"
#include "instance_commands.h"
#include "output.h"
#include "paths.h"
#include "registry_commands.h"
#include "volume_commands.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

volatile std::sig_atomic_t interrupted = 0;

struct ComposeOptions {
    std::string file;  // empty: the compose file of the current directory
    bool detach = false, follow = false;
    std::string output = "table";
};

ComposeFile load(const ComposeOptions& options) {
    return parse_compose(options.file.empty() ? find_compose_file(".") : options.file);
}

// kilnd's instances by name, from one request: a service without one is simply not in it (kilnd's
// errors reach kiln as messages, without a status to tell a 404 by).
std::map<std::string, json> instances_by_name(Client& client) {
    std::map<std::string, json> out;
    const json listed = client.get("/v1/instances");  // kept: a range-for over a temporary's member dangles
    for (const auto& i : listed["instances"]) out[i["name"].get<std::string>()] = i;
    return out;
}

// Where an instance's console ends now: following it from there skips what earlier runs printed.
int64_t console_end(Client& client, const std::string& name) {
    return client.get("/v1/instances/" + name + "/logs?offset=0&limit=0")["available"]["end"];
}

// The image to run: the one `build` makes, built as `kiln run DIR` builds it (tagged `image` if
// the service has one too), else `image`, pulled first if it is a registry's and not here.
std::string image_for(const ComposeService& service) {
    if (service.build.empty()) return ensure_image(service.image);
    return build_image(project_kraftfile(service.build), service.image).reference();
}

json create_body(const ComposeService& service, const std::string& image) {
    json body = {{"image", image}, {"name", service.name}, {"restart_policy", service.restart}};
    if (!service.command.empty()) body["args"] = service.command;
    if (!service.environment.empty()) body["env"] = service.environment;
    if (service.memory_mb) body["memory_mb"] = *service.memory_mb;
    if (service.cpu_shares) body["cpu_shares"] = *service.cpu_shares;
    if (service.pids_limit) body["pids_limit"] = *service.pids_limit;
    if (!service.ports.empty()) body["service_group"] = service_group(service.ports);
    if (!service.volumes.empty()) body["volumes"] = volumes_field(service.volumes);
    return body;
}

struct Brought {
    std::string what;        // what was done, for the user
    int64_t log_offset = 0;  // where its console's new output starts
};

// Creates the service's instance, or starts it if it is stopped. One that is up is left as it is,
// even if the file changed since it was created: `down` then `up` recreates it.
Brought bring_up(Client& client, const ComposeService& service, const std::map<std::string, json>& existing) {
    const auto found = existing.find(service.name);
    if (found == existing.end()) {
        const std::string image = image_for(service);
        client.post("/v1/instances", create_body(service, image));
        return {"created (" + image + ")", 0};
    }
    const std::string state = found->second["state"];
    const int64_t end = console_end(client, service.name);
    if (state != "stopped") return {state, end};
    client.put("/v1/instances/" + service.name + "/start");
    return {"started", end};
}

// One instance's console as it is followed.
struct Console {
    std::string name;
    int64_t offset = 0;
    bool may_restart = false;  // kilnd starts it again after it stops, unless a user stopped it
    std::string partial;       // the start of a line not yet ended
    std::string state;
};

// Several consoles printed together: a whole line at a time, each after its service's name, so
// that the lines of different services never mix.
class Consoles {
  public:
    explicit Consoles(std::vector<Console> consoles) : consoles_(std::move(consoles)) {
        for (const auto& c : consoles_) width_ = std::max(width_, c.name.size());
    }

    // Prints each console's whole lines past its offset (the answer carries its state too). With
    // `to_the_end`, the line it has not ended yet too: it is the last, the instance having stopped.
    void poll(Client& client, bool to_the_end = false) {
        for (auto& c : consoles_) {
            json logs;
            do {  // kilnd answers at most 1 MiB at a time
                logs = client.get("/v1/instances/" + c.name + "/logs?offset=" + std::to_string(c.offset));
                c.partial += logs["output"].get<std::string>();
                c.offset = logs["range"]["end"];
                print_lines(c);
            } while (c.offset < logs["available"]["end"].get<int64_t>());
            c.state = logs["state"];
            if (to_the_end && !c.partial.empty()) print_line(c.name, c.partial);
            if (to_the_end) c.partial.clear();
        }
        std::fflush(stdout);
    }

    bool ended() const {
        return std::all_of(consoles_.begin(), consoles_.end(),
                           [](const Console& c) { return c.state == "stopped" && !c.may_restart; });
    }

    std::vector<Console>& all() { return consoles_; }

  private:
    void print_lines(Console& c) const {
        size_t start = 0;
        for (size_t end = c.partial.find('\n'); end != std::string::npos; end = c.partial.find('\n', start)) {
            print_line(c.name, std::string_view(c.partial).substr(start, end - start));
            start = end + 1;
        }
        c.partial.erase(0, start);
    }

    void print_line(const std::string& name, std::string_view line) const {
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::printf("%-*s | ", static_cast<int>(width_), name.c_str());
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fputc('\n', stdout);
    }

    std::vector<Console> consoles_;
    size_t width_ = 0;
};

// Ctrl-C on an attached `up`: every instance stopped, dependents first, as docker compose does.
// A stop also cancels a restart kilnd has due, so a stopped one is stopped again.
void stop_all(Client& client, Consoles& consoles) {
    std::fprintf(stderr, "kiln: stopping the services (Ctrl-C again to stop waiting)\n");
    for (auto c = consoles.all().rbegin(); c != consoles.all().rend(); ++c) {
        client.put("/v1/instances/" + c->name + "/stop", {{"drain_timeout_ms", 2000}});
        c->may_restart = false;
    }
}

// Prints the consoles until every instance has stopped for good. With `stop_on_interrupt`, Ctrl-C
// stops them and their last output is still printed; a second Ctrl-C ends kiln at once.
void follow(Client& client, Consoles& consoles, bool stop_on_interrupt) {
    if (stop_on_interrupt)
        std::signal(SIGINT, [](int) {
            interrupted = 1;
            std::signal(SIGINT, SIG_DFL);
        });
    bool stopped = false;
    for (consoles.poll(client); !consoles.ended(); consoles.poll(client)) {
        if (interrupted && !stopped) {
            stop_all(client, consoles);
            stopped = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    consoles.poll(client, true);  // what came as they stopped
}

void up(const ComposeOptions& options) {
    const ComposeFile compose = load(options);
    Client client;
    const auto existing = instances_by_name(client);
    // The file's volumes, made if they do not exist (kept by `down`, as docker compose keeps them);
    // an external one must exist.
    std::set<std::string> volumes_here;
    const json listed = client.get("/v1/volumes");  // kept: a range-for over a temporary's member dangles
    for (const auto& v : listed["volumes"]) volumes_here.insert(v["name"].get<std::string>());
    for (const auto& volume : compose.volumes) {
        if (volumes_here.count(volume.name)) continue;
        if (volume.external)
            throw std::runtime_error("volume '" + volume.name +
                                     "' is external but does not exist (kiln volume create)");
        ensure_volumes(client, {volume.name}, volume.size_mb);
        std::printf("volume %s: created\n", volume.name.c_str());
    }
    std::vector<Console> consoles;
    for (const auto& service : compose.services) {
        const Brought brought = bring_up(client, service, existing);
        std::printf("%s: %s\n", service.name.c_str(), brought.what.c_str());
        std::fflush(stdout);  // a build may take a while: say what is done so far
        consoles.push_back({service.name, brought.log_offset, service.restart != "never", "", ""});
    }
    if (options.detach) return;
    Consoles attached(std::move(consoles));
    follow(client, attached, true);
}

// Removes the instances, dependents first, and the services kilnd made for their ports (named after
// the instance, and left behind when it goes).
void down(const ComposeOptions& options) {
    const ComposeFile compose = load(options);
    Client client;
    const auto existing = instances_by_name(client);
    std::set<std::string> services;
    if (std::any_of(compose.services.begin(), compose.services.end(), [](const auto& s) { return !s.ports.empty(); })) {
        const json listed = client.get("/v1/services");
        for (const auto& s : listed["services"]) services.insert(s["name"].get<std::string>());
    }
    for (auto service = compose.services.rbegin(); service != compose.services.rend(); ++service) {
        std::string done;
        if (existing.count(service->name)) {
            client.del("/v1/instances/" + service->name);
            done = "removed";
        }
        if (!service->ports.empty() && services.count(service->name)) {
            client.del("/v1/services/" + service->name);
            done.append(done.empty() ? "service removed" : ", with its service");
        }
        std::printf("%s: %s\n", service->name.c_str(), done.empty() ? "absent" : done.c_str());
    }
}

// As kiln ps says how an instance's last run ended (from stop_reason's bits: docs/api.md).
std::string status_of(const json& instance) {
    if (instance["state"] != "stopped") return "";  // what it says is of a run before this one
    const int64_t reason = instance.value("stop_reason", 0);
    if (instance.contains("exit_code")) return "exited (" + std::to_string(instance["exit_code"].get<int>()) + ")";
    if (reason & 8) return (reason & 16) ? "stopped (forced)" : "stopped";
    if (instance.contains("vmm_status"))
        return "failed (kiln-vmm " + std::to_string(instance["vmm_status"].get<int>()) + ", see vmm.log)";
    return instance.contains("stop_reason") ? "killed" : "";
}

std::string ports_of(const ComposeService& service) {
    std::string text;
    for (const auto& port : service.ports) {
        if (!text.empty()) text.append(",");
        text.append(port.substr(0, port.find(':'))).append("->").append(port.substr(port.find(':') + 1));
    }
    return text;
}

void ps(const ComposeOptions& options) {
    const Format format = parse_format(options.output);
    const ComposeFile compose = load(options);
    Client client;
    const auto existing = instances_by_name(client);
    if (format == Format::kJson) {
        json out = json::array();
        for (const auto& service : compose.services) {
            const auto found = existing.find(service.name);
            out.push_back(found == existing.end() ? json{{"name", service.name}, {"state", "absent"}} : found->second);
        }
        std::cout << out.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "IMAGE", "CREATED", "STATUS", "PORTS"}};
    for (const auto& service : compose.services) {
        const auto found = existing.find(service.name);
        if (found == existing.end()) {
            rows.push_back({service.name, "absent", service.image, "", "", ports_of(service)});
            continue;
        }
        const json& i = found->second;
        rows.push_back(
            {service.name, i["state"], i["image"], human_age(i["created_ns"]), status_of(i), ports_of(service)});
    }
    print_table(rows);
}

void logs(const ComposeOptions& options) {
    const ComposeFile compose = load(options);
    Client client;
    const auto existing = instances_by_name(client);
    std::vector<Console> found;
    for (const auto& service : compose.services)
        if (existing.count(service.name)) found.push_back({service.name, 0, service.restart != "never", "", ""});
    if (found.empty()) throw std::runtime_error("no service of " + compose.path + " has an instance (kiln compose up)");
    Consoles consoles(std::move(found));
    if (options.follow) return follow(client, consoles, false);
    consoles.poll(client, true);
}

}  // namespace

void add_compose_commands(CLI::App& app) {
    auto options = std::make_shared<ComposeOptions>();
    auto* compose = app.add_subcommand("compose", "run a compose file's services, each an instance named after it");
    compose->add_option("-f,--file", options->file,
                        "the compose file (default: compose.yaml, compose.yml, docker-compose.yaml or "
                        "docker-compose.yml here)");
    compose->require_subcommand(1);

    auto* up_command = compose->add_subcommand(
        "up",
        "build, create and start the services, dependencies first, then print their logs until Ctrl-C stops them");
    up_command->add_flag("-d,--detach", options->detach, "return once they are started");
    up_command->callback([options] { up(*options); });

    auto* down_command = compose->add_subcommand("down", "remove the services' instances (a running one is stopped)");
    down_command->callback([options] { down(*options); });

    auto* ps_command = compose->add_subcommand("ps", "list the services' instances");
    ps_command->add_option("-o,--output", options->output, "table or json");
    ps_command->callback([options] { ps(*options); });

    auto* logs_command = compose->add_subcommand("logs", "print the services' consoles, each line after its name");
    logs_command->add_flag("-f,--follow", options->follow, "keep printing until they stop");
    logs_command->callback([options] { logs(*options); });
}

}  // namespace kiln::cli
