#include "services/service_store.h"

namespace kiln::services {

nlohmann::json Service::to_json() const {
    nlohmann::json ports_json = nlohmann::json::array();
    for (const auto& p : ports)
        ports_json.push_back({{"port", p.port}, {"destination_port", p.destination_port}, {"handlers", p.handlers}});
    nlohmann::json j = {{"uuid", uuid},
                        {"name", name},
                        {"services", ports_json},
                        {"soft_limit", soft_limit},
                        {"hard_limit", hard_limit},
                        {"created_ns", created_ns}};
    if (autoscale_max > 0)
        j["autoscale"] = {{"min", autoscale_min}, {"max", autoscale_max}, {"cooldown_time_ms", autoscale_cooldown_ms}};
    return j;
}

Service Service::from_json(const nlohmann::json& j) {
    Service s;
    s.uuid = j.at("uuid").get<std::string>();
    s.name = j.at("name").get<std::string>();
    for (const auto& p : j.at("services"))
        s.ports.push_back({p.at("port").get<int>(), p.at("destination_port").get<int>(),
                           p.at("handlers").get<std::vector<std::string>>()});
    s.soft_limit = j.value("soft_limit", int64_t{0});
    s.hard_limit = j.value("hard_limit", int64_t{0});
    s.created_ns = j.value("created_ns", int64_t{0});
    if (j.contains("autoscale")) {
        s.autoscale_min = j["autoscale"].value("min", int64_t{0});
        s.autoscale_max = j["autoscale"].value("max", int64_t{0});
        s.autoscale_cooldown_ms = j["autoscale"].value("cooldown_time_ms", int64_t{1000});
    }
    return s;
}

ServiceStore::ServiceStore(store::Database& db) : db_(db) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS services (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, "
        "created_ns INTEGER NOT NULL)");
    // One row per public port: the database itself refuses a port that two services claim.
    db_.exec(
        "CREATE TABLE IF NOT EXISTS service_ports (port INTEGER PRIMARY KEY, service TEXT NOT NULL "
        "REFERENCES services(uuid) ON DELETE CASCADE)");
}

void ServiceStore::insert(const Service& service) {
    store::Transaction transaction(db_);
    store::Statement(db_, "INSERT INTO services (uuid, name, spec, created_ns) VALUES (?, ?, ?, ?)")
        .bind(1, service.uuid)
        .bind(2, service.name)
        .bind(3, service.to_json().dump())
        .bind(4, service.created_ns)
        .step();
    for (const auto& p : service.ports)
        store::Statement(db_, "INSERT INTO service_ports (port, service) VALUES (?, ?)")
            .bind(1, int64_t{p.port})
            .bind(2, service.uuid)
            .step();
    transaction.commit();
}

void ServiceStore::remove(const std::string& uuid) {
    store::Transaction transaction(db_);
    store::Statement(db_, "DELETE FROM service_ports WHERE service = ?").bind(1, uuid).step();
    store::Statement(db_, "DELETE FROM services WHERE uuid = ?").bind(1, uuid).step();
    transaction.commit();
}

std::optional<Service> ServiceStore::find(const std::string& uuid_or_name) {
    store::Statement s(db_, "SELECT spec FROM services WHERE uuid = ?1 OR name = ?1");
    s.bind(1, uuid_or_name);
    if (!s.step()) return std::nullopt;
    return Service::from_json(nlohmann::json::parse(s.text(0)));
}

std::optional<std::string> ServiceStore::port_owner(int port) {
    store::Statement s(db_,
                       "SELECT services.name FROM service_ports JOIN services ON services.uuid = service_ports.service "
                       "WHERE service_ports.port = ?");
    s.bind(1, int64_t{port});
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

std::vector<Service> ServiceStore::list() {
    store::Statement s(db_, "SELECT spec FROM services ORDER BY created_ns");
    std::vector<Service> out;
    while (s.step()) out.push_back(Service::from_json(nlohmann::json::parse(s.text(0))));
    return out;
}

}  // namespace kiln::services
