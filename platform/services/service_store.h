// Services as Unikraft Cloud defines them (a "service group"): public ports on the host, each
// forwarded to a port of the group's instances, with per-instance connection limits. kilnd's load
// balancer serves them; instances join one with their `service` field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"

namespace kiln::services {

struct Port {
    int port = 0;                       // on the host
    int destination_port = 0;           // on each instance
    std::vector<std::string> handlers;  // [] plain TCP, balanced per connection; ["http"] per request
};

struct Service {
    std::string uuid, name;
    std::vector<Port> ports;
    // Connections per instance: past soft_limit the autoscaler adds instances; at hard_limit an
    // instance takes no more (they wait). 0 = none.
    int64_t soft_limit = 0, hard_limit = 0;
    // Autoscale (off while max is 0): between min and max instances; one more when the group's
    // open connections reach soft_limit per instance; one fewer after `cooldown_ms` idle.
    int64_t autoscale_min = 0, autoscale_max = 0, autoscale_cooldown_ms = 1000;
    int64_t created_ns = 0;

    nlohmann::json to_json() const;
    static Service from_json(const nlohmann::json& j);  // of to_json's shape
};

class ServiceStore {
  public:
    explicit ServiceStore(store::Database& db);
    void insert(const Service& service);  // throws DatabaseError if the name, uuid or a port is taken
    void remove(const std::string& uuid);
    std::optional<Service> find(const std::string& uuid_or_name);
    std::vector<Service> list();
    // The name of the service that has public port `port`, if one has.
    std::optional<std::string> port_owner(int port);

  private:
    store::Database& db_;
};

}  // namespace kiln::services
