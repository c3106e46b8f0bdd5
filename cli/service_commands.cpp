#include "service_commands.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "client.h"
#include "instance_commands.h"
#include "output.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

struct CreateOptions {
    std::string name;
    std::vector<std::string> publish;
    int64_t soft_limit = 0, hard_limit = 0;
    int64_t autoscale_min = 0, autoscale_max = 0;
    std::string autoscale_cooldown;
};

std::string ports_text(const json& service) {
    std::string text;
    for (const auto& p : service["services"]) {
        if (!text.empty()) text += ",";
        text += std::to_string(p["port"].get<int>()) + "->" + std::to_string(p["destination_port"].get<int>());
    }
    return text;
}

}  // namespace

void add_service_commands(CLI::App& app) {
    auto* service = app.add_subcommand("service", "services: public ports balanced over instances");
    service->require_subcommand(1);

    auto create = std::make_shared<CreateOptions>();
    auto* create_command = service->add_subcommand("create", "create a service");
    create_command->add_option("name", create->name, "its name")->required();
    create_command->add_option("-p,--publish", create->publish, "HOST:GUEST: the host's port and the instances'")
        ->required();
    create_command->add_option("--soft-limit", create->soft_limit, "connections per instance before scaling out");
    create_command->add_option("--hard-limit", create->hard_limit, "connections per instance at most");
    create_command->add_option("--autoscale-min", create->autoscale_min, "instances at least (with --autoscale-max)");
    create_command->add_option("--autoscale-max", create->autoscale_max,
                               "instances at most: one more each time they all reach --soft-limit");
    create_command->add_option("--autoscale-cooldown", create->autoscale_cooldown,
                               "idle time before an instance beyond the minimum goes, like 1s");
    create_command->callback([create] {
        json body = service_group(create->publish);
        body["name"] = create->name;
        if (create->soft_limit > 0) body["soft_limit"] = create->soft_limit;
        if (create->hard_limit > 0) body["hard_limit"] = create->hard_limit;
        if (create->autoscale_max > 0) {
            body["autoscale"] = {{"min", create->autoscale_min}, {"max", create->autoscale_max}};
            if (!create->autoscale_cooldown.empty())
                body["autoscale"]["cooldown_time_ms"] =
                    parse_duration_ms(create->autoscale_cooldown, "--autoscale-cooldown");
        }
        std::printf("%s\n", Client().post("/v1/services", body)["name"].get<std::string>().c_str());
    });

    auto output = std::make_shared<std::string>("table");
    auto* ls_command = service->add_subcommand("ls", "list services");
    ls_command->add_option("-o,--output", *output, "table or json");
    ls_command->callback([output] {
        const Format format = parse_format(*output);
        const json listed = Client().get("/v1/services");
        if (format == Format::kJson) {
            std::cout << listed["services"].dump(2) << "\n";
            return;
        }
        std::vector<std::vector<std::string>> rows{{"NAME", "PORTS", "INSTANCES", "CREATED"}};
        for (const auto& s : listed["services"])
            rows.push_back(
                {s["name"], ports_text(s), std::to_string(s["instances"].size()), human_age(s["created_ns"])});
        print_table(rows);
    });

    auto ids = std::make_shared<std::vector<std::string>>();
    auto* inspect_command = service->add_subcommand("inspect", "show services as JSON");
    inspect_command->add_option("service", *ids, "names or uuids")->required();
    inspect_command->callback([ids] {
        Client client;
        json out = json::array();
        for (const auto& id : *ids) out.push_back(client.get("/v1/services/" + id));
        std::cout << out.dump(2) << "\n";
    });
    auto* rm_command = service->add_subcommand("rm", "remove services (their instances first)");
    rm_command->add_option("service", *ids, "names or uuids")->required();
    rm_command->callback([ids] {
        Client client;
        for (const auto& id : *ids)
            std::printf("%s\n", client.del("/v1/services/" + id)["name"].get<std::string>().c_str());
    });
}

}  // namespace kiln::cli
