// Request bodies of kilnd's API, checked before anything acts on them: JSON objects of at most
// 1 MiB whose every field is known and of the right type and range. A refusal is an ApiError
// whose message names the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "instances/limits.h"

namespace kiln::api {

inline constexpr size_t kMaxBody = 1 << 20;
// An image pushed by a remote kiln (POST /v1/images, multipart): its kernel and root file system.
inline constexpr size_t kMaxImageUpload = size_t{512} << 20;
// Volumes one instance may have (its block devices).
inline constexpr size_t kMaxVolumesPerInstance = 16;

// A refusal that becomes a 4xx answer.
struct ApiError {
    int status;
    std::string message;
};

// The body as a JSON object (an empty body is {}). Throws ApiError.
nlohmann::json parse_body(const std::string& body);

// A body's fields, each read once with its type and range checked.
class Fields {
  public:
    // Throws ApiError naming the first field not in `allowed`.
    Fields(const nlohmann::json& body, const std::set<std::string>& allowed);

    std::string text(const std::string& key, const std::string& fallback = "") const;
    std::vector<std::string> text_list(const std::string& key) const;
    // `env`: a list of NAME=VALUE or a mapping of NAME: VALUE, as NAME=VALUE.
    std::vector<std::string> environment(const std::string& key) const;
    int64_t integer(const std::string& key, int64_t fallback, int64_t low, int64_t high) const;
    bool boolean(const std::string& key, bool fallback) const;
    bool has(const std::string& key) const { return body_.contains(key); }

  private:
    const nlohmann::json& body_;
};

// A list of public ports, as POST /v1/services and an instance's service_group take it:
// [{"port": 8080, "destination_port": 80, "handlers": []}, ...].
struct PortSpec {
    int64_t port = 0, destination_port = 0;
    std::vector<std::string> handlers;
};
std::vector<PortSpec> parse_ports(const nlohmann::json& value, const std::string& field);

// POST /v1/services.
struct ServiceRequest {
    std::optional<std::string> name;
    std::vector<PortSpec> ports;
    int64_t soft_limit = 0, hard_limit = 0;
    int64_t autoscale_min = 0, autoscale_max = 0, autoscale_cooldown_ms = 1000;  // max 0: off
};
ServiceRequest parse_service(const std::string& body);
ServiceRequest parse_service_fields(const nlohmann::json& body, const std::string& where);

// An instance's scale_to_zero: {"policy": "off|on|idle", "stateful": bool, "cooldown_time_ms": N}.
struct ScaleToZeroRequest {
    std::string policy = "off";
    bool stateful = false;
    int64_t cooldown_ms = 1000;
};

// A volume to attach: POST /v1/instances' `volumes: [{name|uuid, at, readonly}]` and PUT
// /v1/volumes/{id}/attach's {attach_to: {name|uuid}, at, readonly}. `at` is normalized.
struct VolumeAttachRequest {
    std::string id;  // the volume's (in an instance's create) or the instance's (attach), name or uuid
    std::string at;
    bool readonly = false;
};

// POST /v1/volumes: {name, size_mb}.
struct VolumeCreateRequest {
    std::optional<std::string> name;
    int64_t size_mb = 0;
};
VolumeCreateRequest parse_volume_create(const std::string& body);
VolumeAttachRequest parse_volume_attach(const std::string& body);
// PUT /v1/volumes/{id}/detach: {from: {name|uuid}}; the instance's name or uuid.
std::string parse_volume_detach(const std::string& body);
// POST /v1/volumes/{id}/clone: {name}.
std::string parse_volume_clone(const std::string& body);

// POST /v1/instances.
struct CreateRequest {
    std::string image;
    std::optional<std::string> name;
    std::vector<std::string> args, env;
    std::optional<int64_t> memory_mb;
    std::string restart_policy = "never";
    bool autostart = true;
    int64_t timeout_s = 0;
    // service_group: {"name"|"uuid": an existing service} or {"services": [...ports], ...} for a
    // new one named after the instance.
    std::optional<std::string> service;
    std::optional<ServiceRequest> new_service;
    ScaleToZeroRequest scale_to_zero;
    std::optional<std::string> platform;       // kvm or proc; the host's default when absent
    instances::Limits limits;                  // cpu_shares, pids_limit
    std::vector<VolumeAttachRequest> volumes;  // in device order
};
CreateRequest parse_create(const std::string& body);

// PUT /v1/instances/{id}/stop.
struct StopRequest {
    int64_t drain_timeout_ms = 5000;
    bool force = false;
};
StopRequest parse_stop(const std::string& body);
StopRequest parse_stop_fields(const nlohmann::json& body);  // an already parsed body

// The batch forms (PUT /v1/instances/start, PUT /v1/instances/stop, DELETE /v1/instances): a JSON
// list of objects naming one instance each by "uuid" or "name", with the single form's fields.
struct BatchItem {
    std::string id;         // the uuid or the name
    nlohmann::json fields;  // the item without "uuid"/"name"
};
std::vector<BatchItem> parse_batch(const std::string& body);

}  // namespace kiln::api
