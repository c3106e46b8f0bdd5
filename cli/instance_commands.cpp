#include "instance_commands.h"

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "client.h"
#include "image_commands.h"
#include "images/image_store.h"
#include "instances/limits.h"
#include "output.h"
#include "paths.h"
#include "registry_commands.h"
#include "volume_commands.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

volatile std::sig_atomic_t interrupted = 0;

// "64M", "1G", "512" (MiB) -> MiB.
int64_t parse_memory_mb(const std::string& text) {
    size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string unit = text.substr(used);
    if (used == 0 || value <= 0 ||
        !(unit.empty() || unit == "M" || unit == "m" || unit == "Mi" || unit == "G" || unit == "g" || unit == "Gi"))
        throw std::invalid_argument("-m " + text + ": a memory size is like 64M or 1G");
    return unit.empty() || unit[0] == 'M' || unit[0] == 'm' ? value : value * 1024;
}

// Prints the console output past `offset` and moves it on; returns the instance's state, which
// the same answer carries (one request per poll).
std::string print_logs(Client& client, const std::string& id, int64_t& offset) {
    const json logs = client.get("/v1/instances/" + id + "/logs?offset=" + std::to_string(offset));
    const std::string output = logs["output"];
    std::fwrite(output.data(), 1, output.size(), stdout);
    std::fflush(stdout);
    offset = logs["range"]["end"];
    return logs["state"];
}

// Prints the console from `offset` as kilnd streams it, until the instance is no longer running.
void stream_logs(Client& client, const std::string& id, int64_t offset) {
    client.stream("/v1/instances/" + id + "/logs?follow=true&offset=" + std::to_string(offset),
                  [](const char* data, size_t size) {
                      std::fwrite(data, 1, size, stdout);
                      std::fflush(stdout);
                      return true;
                  });
}

struct RunOptions {
    bool detach = false, remove = false;
    std::string name, memory, restart = "never", platform;
    std::vector<std::string> env;
    std::vector<std::string> publish;  // HOST:GUEST[/http]
    std::string service;               // join this existing service
    std::string scale_to_zero = "off", cooldown;
    bool stateful = false;
    std::optional<int64_t> cpu_shares, pids_limit;
    std::vector<std::string> volumes;  // NAME:/path[:ro]
};

}  // namespace

int64_t parse_duration_ms(const std::string& text, const std::string& flag) {
    size_t used = 0;
    long long value = -1;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    const std::string unit = text.substr(used);
    const long long scale = unit.empty() || unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
    if (used == 0 || value <= 0 || scale == 0)
        throw std::invalid_argument(flag + " " + text + ": a duration is like 500ms, 1s or 2m");
    return value * scale;
}

// The service_group of `kiln run -p`: one port mapping per -p HOST:GUEST[/http].
json service_group(const std::vector<std::string>& publish) {
    json ports = json::array();
    for (const auto& p : publish) {
        std::string spec = p, handler;
        if (const auto slash = spec.find('/'); slash != std::string::npos) {
            handler = spec.substr(slash + 1);
            spec.resize(slash);
        }
        const auto colon = spec.find(':');
        int host = 0, guest = 0;
        try {
            host = std::stoi(spec.substr(0, colon));
            guest = colon == std::string::npos ? host : std::stoi(spec.substr(colon + 1));
        } catch (const std::exception&) {
            host = 0;
        }
        if (host <= 0 || host > 65535 || guest <= 0 || guest > 65535 ||
            (!handler.empty() && handler != "http" && handler != "tcp"))
            throw std::invalid_argument("-p " + p + ": expected HOST:GUEST, HOST:GUEST/http or HOST:GUEST/tcp");
        json port = {{"port", host}, {"destination_port", guest}, {"handlers", json::array()}};
        if (handler == "http") port["handlers"].push_back("http");
        ports.push_back(port);
    }
    return {{"services", ports}};
}

namespace {

int run(const RunOptions& options, std::vector<std::string> rest) {
    if (rest.empty()) throw std::invalid_argument("kiln run: give an image or a directory with a Kraftfile");
    std::string image = rest[0];
    std::vector<std::string> args(rest.begin() + 1, rest.end());
    std::error_code error;
    if (std::filesystem::is_directory(image, error)) {  // a project: build it first
        image = build_image(project_kraftfile(image)).reference();
    } else {
        image = ensure_image(image);  // a registry's image is pulled if it is not here
    }
    json body = {{"image", image}, {"restart_policy", options.restart}};
    if (!options.name.empty()) body["name"] = options.name;
    if (!args.empty()) body["args"] = args;
    if (!options.env.empty()) body["env"] = options.env;
    if (!options.memory.empty()) body["memory_mb"] = parse_memory_mb(options.memory);
    if (!options.platform.empty()) body["platform"] = options.platform;
    if (options.cpu_shares) body["cpu_shares"] = *options.cpu_shares;
    if (options.pids_limit) body["pids_limit"] = *options.pids_limit;
    if (!options.publish.empty() && !options.service.empty())
        throw std::invalid_argument("-p makes a service for the instance; --service joins one: not both");
    if (!options.publish.empty()) body["service_group"] = service_group(options.publish);
    if (!options.service.empty()) body["service_group"] = {{"name", options.service}};
    if (options.scale_to_zero != "off" || options.stateful || !options.cooldown.empty()) {
        body["scale_to_zero"] = {{"policy", options.scale_to_zero}, {"stateful", options.stateful}};
        if (!options.cooldown.empty())
            body["scale_to_zero"]["cooldown_time_ms"] = parse_duration_ms(options.cooldown, "--scale-to-zero-cooldown");
    }
    // Named volumes, made (kDefaultSizeMb) if they do not exist yet, as docker makes them.
    std::vector<volumes::VolumeSpec> specs;
    std::vector<std::string> volume_names;
    for (const auto& v : options.volumes) {
        specs.push_back(volumes::parse_volume_spec(v));
        volume_names.push_back(specs.back().name);
    }
    if (!specs.empty()) {
        Client volume_client;
        ensure_volumes(volume_client, volume_names, volumes::kDefaultSizeMb);
        body["volumes"] = volumes_field(specs);
    }
    // Ctrl-C is ours before the create: the instance runs (and a user may press it) before
    // kilnd's answer arrives, and the default action would leave it running without its kiln run.
    if (!options.detach) std::signal(SIGINT, [](int) { interrupted = 1; });
    Client client;
    const json instance = client.post("/v1/instances", body);
    const std::string id = instance["uuid"];
    // kilnd answers a create only once the service's ports are bound and listening: when kiln run
    // -p returns, the host port takes connections (held until the instance is ready).
    if (options.detach) {
        std::printf("%s\n", instance["name"].get<std::string>().c_str());
        return 0;
    }
    // Attached: the console streamed as it comes, until the instance stops. Ctrl-C asks kilnd to
    // stop it (from a second thread: the stream may be silent), and the stream then ends.
    // The handler cannot notify: the stopper looks at `interrupted` every 10 ms, and is told at
    // once when the stream ends.
    std::mutex mutex;
    std::condition_variable ended;
    bool streaming = true;
    std::thread stopper([&] {
        std::unique_lock lock(mutex);
        while (streaming && !interrupted) ended.wait_for(lock, std::chrono::milliseconds(10));
        if (interrupted) Client().put("/v1/instances/" + id + "/stop", {{"drain_timeout_ms", 2000}});
    });
    const auto stream_ended = [&] {
        {
            std::lock_guard guard(mutex);
            streaming = false;
        }
        ended.notify_one();
        stopper.join();
    };
    try {
        stream_logs(client, id, 0);
    } catch (...) {
        stream_ended();
        throw;
    }
    stream_ended();
    // With --rm, the delete's answer says how it ended (one request instead of two).
    const json state = options.remove ? client.del("/v1/instances/" + id) : client.get("/v1/instances/" + id);
    if (state.contains("exit_code")) return state["exit_code"].get<int>();
    if (state.contains("vmm_status")) return state["vmm_status"].get<int>();  // the VM's own end: 124, 125, 126
    return 1;                                                                 // killed before it could report a status
}

void ps(bool all, const std::string& output) {
    const Format format = parse_format(output);
    Client client;
    json instances = json::array();
    const json listed = client.get("/v1/instances");  // kept: a range-for over a temporary's member dangles
    for (const auto& i : listed["instances"])
        if (all || (i["state"] != "stopped" && i["state"] != "standby")) instances.push_back(i);
    if (format == Format::kJson) {
        std::cout << instances.dump(2) << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "STATE", "IMAGE", "CREATED", "STATUS"}};
    for (const auto& i : instances) {
        // From stop_reason's bits (docs/api.md): what a user wants to know about the last run.
        std::string status;
        const int64_t reason = i.value("stop_reason", 0);
        if (i.contains("exit_code"))
            status = "exited (" + std::to_string(i["exit_code"].get<int>()) + ")";
        else if (reason & 8)
            status = (reason & 16) ? "stopped (forced)" : "stopped";
        else if (i.contains("vmm_status"))
            status = "failed (kiln-vmm " + std::to_string(i["vmm_status"].get<int>()) + ", see vmm.log)";
        else if (i.contains("stop_reason"))
            status = "killed";
        rows.push_back({i["name"], i["state"], i["image"], human_age(i["created_ns"]), status});
    }
    print_table(rows);
}

void logs(const std::string& id, bool follow) {
    Client client;
    int64_t offset = 0;
    if (follow) return stream_logs(client, id, offset);
    print_logs(client, id, offset);
}

}  // namespace

void add_instance_commands(CLI::App& app, int& exit_status) {
    auto options = std::make_shared<RunOptions>();
    auto* run_command = app.add_subcommand("run", "run an image (or a directory with a Kraftfile) as an instance");
    run_command->add_flag("-d,--detach", options->detach, "run in the background and print the instance's name");
    run_command->add_flag("--rm", options->remove, "remove the instance when it stops");
    add_registry_flags(*run_command);
    run_command->add_option("--name", options->name, "the instance's name");
    run_command->add_option("-m,--memory", options->memory, "memory, like 64M or 1G (default: the image's)");
    run_command->add_option("-e,--env", options->env, "NAME=VALUE, added to the image's environment")
        ->allow_extra_args(false);  // one value per -e: what follows is the image
    run_command->add_option("--restart", options->restart, "never, always or on-failure")->capture_default_str();
    run_command
        ->add_option("--platform", options->platform,
                     "kvm (a microVM) or proc (a confined process); default: the host's (kiln info)")
        ->check(CLI::IsMember({"kvm", "proc"}));
    run_command
        ->add_option("--cpu-shares", options->cpu_shares,
                     "CPU weight against other instances (default 1024), through the host's cgroups")
        ->check(CLI::Range(instances::Limits::kMinCpuShares, instances::Limits::kMaxCpuShares));
    run_command
        ->add_option("--pids-limit", options->pids_limit,
                     "cap on the instance's host tasks, its tender's threads included (default 64)")
        ->check(CLI::Range(instances::Limits::kMinPidsLimit, instances::Limits::kMaxPidsLimit));
    run_command
        ->add_option("-p,--publish", options->publish,
                     "HOST:GUEST[/http]: serve the instance's GUEST port on the host's HOST port (a service)")
        ->allow_extra_args(false);
    run_command->add_option("--service", options->service,
                            "join this service (kiln service create) as one of its instances");
    run_command
        ->add_option("--scale-to-zero", options->scale_to_zero, "off, on or idle: stand by when no connection comes")
        ->capture_default_str();
    run_command->add_option("--scale-to-zero-cooldown", options->cooldown,
                            "how long without connections, like 1s (default 1s)");
    run_command->add_flag("--scale-to-zero-stateful", options->stateful,
                          "wake with the memory it had when it scaled down");
    run_command
        ->add_option("-v,--volume", options->volumes,
                     "NAME:/path[:ro]: mount the named volume (created, 256M, if it does not exist)")
        ->allow_extra_args(false);  // one value per -v: what follows is the image
    run_command->prefix_command();  // IMAGE and everything after it are the instance's
    run_command->callback(
        [run_command, options, &exit_status] { exit_status = run(*options, run_command->remaining()); });

    auto all = std::make_shared<bool>(false);
    auto output = std::make_shared<std::string>("table");
    auto* ps_command = app.add_subcommand("ps", "list running instances");
    ps_command->add_flag("-a,--all", *all, "stopped ones too");
    ps_command->add_option("-o,--output", *output, "table or json");
    ps_command->callback([all, output] { ps(*all, *output); });

    auto id = std::make_shared<std::string>();
    auto follow = std::make_shared<bool>(false);
    auto* logs_command = app.add_subcommand("logs", "print an instance's console");
    logs_command->add_option("instance", *id, "name or uuid")->required();
    logs_command->add_flag("-f,--follow", *follow, "keep printing until it stops");
    logs_command->callback([id, follow] { logs(*id, *follow); });

    auto ids = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    // kiln stop and kiln start: one PUT per instance, its name printed as docker does.
    for (const auto& [verb, help] :
         {std::pair{"stop", "stop instances"}, std::pair{"start", "start stopped instances"}}) {
        auto* command = app.add_subcommand(verb, help);
        command->add_option("instance", *ids, "names or uuids")->required();
        command->callback([ids, action = std::string(verb)] {
            Client client;
            for (const auto& i : *ids)
                std::printf("%s\n", client.put("/v1/instances/" + i + "/" + action)["name"].get<std::string>().c_str());
        });
    }
    auto* rm_command = app.add_subcommand("rm", "remove instances");
    rm_command->add_option("instance", *ids, "names or uuids")->required();
    rm_command->add_flag("-f,--force", *force, "stop a running one first");
    rm_command->callback([ids, force] {
        Client client;
        for (const auto& i : *ids) {
            const json instance = client.get("/v1/instances/" + i);
            if (instance["state"] != "stopped" && !*force)
                throw std::runtime_error("instance " + i + " is " + instance["state"].get<std::string>() +
                                         ": stop it first, or kiln rm -f");
            std::printf("%s\n", client.del("/v1/instances/" + i)["name"].get<std::string>().c_str());
        }
    });
    auto* info_command = app.add_subcommand("info", "show the host's platforms (which can run instances, and why not)");
    info_command->add_option("-o,--output", *output, "table or json");
    info_command->callback([output] {
        const json info = Client().get("/v1/info");
        if (*output == "json") {
            std::cout << info.dump(2) << "\n";
            return;
        }
        std::vector<std::vector<std::string>> rows{{"PLATFORM", "AVAILABLE", "DEFAULT", "WHY NOT"}};
        for (const auto& [name, p] : info["platforms"].items())
            rows.push_back({name, p["available"].get<bool>() ? "yes" : "no",
                            info["default_platform"] == name ? "yes" : "", p.value("reason", "")});
        print_table(rows);
    });
    auto* inspect_command = app.add_subcommand("inspect", "show instances as JSON");
    inspect_command->add_option("instance", *ids, "names or uuids")->required();
    inspect_command->callback([ids] {
        Client client;
        json out = json::array();
        for (const auto& i : *ids) out.push_back(client.get("/v1/instances/" + i));
        std::cout << out.dump(2) << "\n";
    });
}

}  // namespace kiln::cli
