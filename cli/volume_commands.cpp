#include "volume_commands.h"

#include <cstdio>
#include <iostream>
#include <memory>
#include <set>

#include "client.h"
#include "output.h"

namespace kiln::cli {

namespace {

using nlohmann::json;

std::string attached_text(const json& volume) {
    std::string text;
    for (const auto& a : volume["attached_to"]) {
        if (!text.empty()) text += ",";
        text +=
            a["name"].get<std::string>() + ":" + a["at"].get<std::string>() + (a["readonly"].get<bool>() ? ":ro" : "");
    }
    return text;
}

}  // namespace

json volumes_field(const std::vector<volumes::VolumeSpec>& specs) {
    json out = json::array();
    for (const auto& s : specs) out.push_back({{"name", s.name}, {"at", s.at}, {"readonly", s.readonly}});
    return out;
}

void ensure_volumes(Client& client, const std::vector<std::string>& names, int64_t size_mb) {
    if (names.empty()) return;
    std::set<std::string> existing;
    const json listed = client.get("/v1/volumes");  // kept: a range-for over a temporary's member dangles
    for (const auto& v : listed["volumes"]) existing.insert(v["name"].get<std::string>());
    for (const auto& name : names)
        if (existing.insert(name).second) client.post("/v1/volumes", {{"name", name}, {"size_mb", size_mb}});
}

void add_volume_commands(CLI::App& app) {
    auto* volume = app.add_subcommand("volume", "volumes: ext4 image files that instances mount (kiln run -v)");
    volume->require_subcommand(1);

    auto name = std::make_shared<std::string>();
    auto size = std::make_shared<std::string>("256M");
    auto* create = volume->add_subcommand("create", "create a volume");
    create->add_option("name", *name, "its name")->required();
    create->add_option("-s,--size", *size, "its size, like 64M or 1G (at least 8M)")->capture_default_str();
    create->callback([name, size] {
        const int64_t size_mb = volumes::parse_size_mb(*size);
        std::printf(
            "%s\n",
            Client().post("/v1/volumes", {{"name", *name}, {"size_mb", size_mb}})["name"].get<std::string>().c_str());
    });

    auto output = std::make_shared<std::string>("table");
    auto* ls = volume->add_subcommand("ls", "list volumes");
    ls->add_option("-o,--output", *output, "table or json");
    ls->callback([output] {
        const Format format = parse_format(*output);
        const json listed = Client().get("/v1/volumes");
        if (format == Format::kJson) {
            std::cout << listed["volumes"].dump(2) << "\n";
            return;
        }
        std::vector<std::vector<std::string>> rows{{"NAME", "SIZE", "STATE", "ATTACHED", "CREATED"}};
        for (const auto& v : listed["volumes"])
            rows.push_back({v["name"], human_size(v["size_bytes"].get<uint64_t>()), v["state"], attached_text(v),
                            human_age(v["created_ns"])});
        print_table(rows);
    });

    auto ids = std::make_shared<std::vector<std::string>>();
    auto inspect_output = std::make_shared<std::string>("json");
    auto* inspect = volume->add_subcommand("inspect", "show volumes as JSON, with the file that backs each");
    inspect->add_option("volume", *ids, "names or uuids")->required();
    inspect->add_option("-o,--output", *inspect_output, "json (the only form)");
    inspect->callback([ids, inspect_output] {
        if (*inspect_output != "json")
            throw std::invalid_argument("-o " + *inspect_output + ": kiln volume inspect prints json");
        Client client;
        json out = json::array();
        for (const auto& id : *ids) out.push_back(client.get("/v1/volumes/" + id));
        std::cout << out.dump(2) << "\n";
    });

    auto rm_ids = std::make_shared<std::vector<std::string>>();
    auto* rm = volume->add_subcommand(
        "rm", "remove volumes (refused while attached to an instance: remove the instance first)");
    rm->add_option("volume", *rm_ids, "names or uuids")->required();
    rm->callback([rm_ids] {
        Client client;
        for (const auto& id : *rm_ids)
            std::printf("%s\n", client.del("/v1/volumes/" + id)["name"].get<std::string>().c_str());
    });

    auto source = std::make_shared<std::string>(), target = std::make_shared<std::string>();
    auto* clone = volume->add_subcommand("clone", "copy a volume (not while an instance writes it)");
    clone->add_option("source", *source, "the volume to copy")->required();
    clone->add_option("name", *target, "the new volume's name")->required();
    clone->callback([source, target] {
        std::printf(
            "%s\n",
            Client().post("/v1/volumes/" + *source + "/clone", {{"name", *target}})["name"].get<std::string>().c_str());
    });
}

}  // namespace kiln::cli
