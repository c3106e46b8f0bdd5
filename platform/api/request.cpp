#include "api/request.h"

#include <algorithm>
#include <cctype>

#include "images/kraftfile.h"
#include "volumes/volume_spec.h"

namespace kiln::api {

using nlohmann::json;

json parse_body(const std::string& body) {
    if (body.size() > kMaxBody) throw ApiError{413, "the request body is larger than 1 MiB"};
    if (body.empty()) return json::object();
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded()) throw ApiError{400, "the request body is not valid JSON"};
    if (!parsed.is_object()) throw ApiError{400, "the request body must be a JSON object"};
    return parsed;
}

Fields::Fields(const json& body, const std::set<std::string>& allowed) : body_(body) {
    for (const auto& [key, value] : body.items())
        if (!allowed.count(key)) throw ApiError{400, "unknown field '" + key + "'"};
}

std::string Fields::text(const std::string& key, const std::string& fallback) const {
    if (!body_.contains(key)) return fallback;
    if (!body_[key].is_string()) throw ApiError{400, "field '" + key + "' must be a string"};
    return body_[key].get<std::string>();
}

std::vector<std::string> Fields::text_list(const std::string& key) const {
    if (!body_.contains(key)) return {};
    const json& value = body_[key];
    if (!value.is_array()) throw ApiError{400, "field '" + key + "' must be a list of strings"};
    std::vector<std::string> out;
    for (const auto& item : value) {
        if (!item.is_string()) throw ApiError{400, "field '" + key + "' must be a list of strings"};
        out.push_back(item.get<std::string>());
    }
    return out;
}

std::vector<std::string> Fields::environment(const std::string& key) const {
    if (!body_.contains(key)) return {};
    auto check = [&](const std::string& name) {
        const bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                        std::all_of(name.begin(), name.end(),
                                    [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
        if (!ok) throw ApiError{400, "field '" + key + "': '" + name + "' is not a variable name"};
    };
    std::vector<std::string> out;
    const json& value = body_[key];
    if (value.is_object()) {
        for (const auto& [name, text] : value.items()) {
            if (!text.is_string())
                throw ApiError{400, "field '" + key + "': the value of " + name + " must be a string"};
            check(name);
            out.push_back(name + "=" + text.get<std::string>());
        }
        return out;
    }
    for (const auto& item : text_list(key)) {
        const auto equals = item.find('=');
        if (equals == std::string::npos) throw ApiError{400, "field '" + key + "': '" + item + "' is not NAME=VALUE"};
        check(item.substr(0, equals));
        out.push_back(item);
    }
    return out;
}

int64_t Fields::integer(const std::string& key, int64_t fallback, int64_t low, int64_t high) const {
    if (!body_.contains(key)) return fallback;
    const json& value = body_[key];
    if (!value.is_number_integer()) throw ApiError{400, "field '" + key + "' must be an integer"};
    // An unsigned value beyond int64 must not wrap into range.
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(high))
        throw ApiError{400,
                       "field '" + key + "' must be between " + std::to_string(low) + " and " + std::to_string(high)};
    const int64_t number = value.get<int64_t>();
    if (number < low || number > high)
        throw ApiError{400,
                       "field '" + key + "' must be between " + std::to_string(low) + " and " + std::to_string(high)};
    return number;
}

bool Fields::boolean(const std::string& key, bool fallback) const {
    if (!body_.contains(key)) return fallback;
    if (!body_[key].is_boolean()) throw ApiError{400, "field '" + key + "' must be true or false"};
    return body_[key].get<bool>();
}

std::vector<PortSpec> parse_ports(const json& value, const std::string& field) {
    if (!value.is_array() || value.empty())
        throw ApiError{400, "field '" + field + "' must be a non-empty list of {port, destination_port, handlers}"};
    if (value.size() > 16) throw ApiError{400, "field '" + field + "': at most 16 ports"};
    std::vector<PortSpec> out;
    for (size_t i = 0; i < value.size(); ++i) {
        const std::string where = field + "[" + std::to_string(i) + "]";
        if (!value[i].is_object()) throw ApiError{400, "field '" + where + "' must be an object"};
        try {
            const Fields item(value[i], {"port", "destination_port", "handlers"});
            PortSpec p;
            p.port = item.integer("port", 0, 1, 65535);
            if (p.port == 0) throw ApiError{400, "field 'port' is required"};
            p.destination_port = item.integer("destination_port", p.port, 1, 65535);
            p.handlers = item.text_list("handlers");
            // No handlers: plain TCP, balanced per connection; ["http"]: per HTTP/1.1 request.
            // TLS termination and redirects are not built: refused rather than pretended.
            for (const auto& handler : p.handlers)
                if (handler != "http")
                    throw ApiError{
                        400, "field 'handlers': '" + handler + "' is not supported (http, or none for plain TCP)"};
            if (p.handlers.size() > 1) throw ApiError{400, "field 'handlers': at most one (http)"};
            for (const auto& other : out)
                if (other.port == p.port) throw ApiError{400, "field 'port': " + std::to_string(p.port) + " twice"};
            out.push_back(p);
        } catch (const ApiError& e) {
            throw ApiError{e.status, where + ": " + e.message};
        }
    }
    return out;
}

ServiceRequest parse_service_fields(const json& body, const std::string& where) {
    try {
        const Fields fields(body, {"name", "services", "soft_limit", "hard_limit", "autoscale"});
        ServiceRequest r;
        if (fields.has("name")) {
            r.name = fields.text("name");
            if (!images::valid_name(*r.name))
                throw ApiError{400,
                               "field 'name': '" + *r.name +
                                   "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)"};
        }
        if (!fields.has("services")) throw ApiError{400, "field 'services' is required"};
        r.ports = parse_ports(body["services"], "services");
        r.soft_limit = fields.integer("soft_limit", 0, 0, 1000000);
        r.hard_limit = fields.integer("hard_limit", 0, 0, 1000000);
        if (r.hard_limit > 0 && r.soft_limit > r.hard_limit)
            throw ApiError{400, "field 'soft_limit' must not be above 'hard_limit'"};
        if (fields.has("autoscale")) {
            const json& autoscale = body["autoscale"];
            if (!autoscale.is_object()) throw ApiError{400, "field 'autoscale' must be an object"};
            try {
                const Fields a(autoscale, {"min", "max", "cooldown_time_ms"});
                r.autoscale_min = a.integer("min", 0, 0, 64);
                r.autoscale_max = a.integer("max", 0, 1, 64);
                if (r.autoscale_max == 0) throw ApiError{400, "field 'max' is required"};
                if (r.autoscale_min > r.autoscale_max) throw ApiError{400, "field 'min' must not be above 'max'"};
                r.autoscale_cooldown_ms = a.integer("cooldown_time_ms", 1000, 1, 86400000);
            } catch (const ApiError& e) {
                throw ApiError{e.status, "autoscale: " + e.message};
            }
            if (r.soft_limit == 0) throw ApiError{400, "field 'autoscale' needs a 'soft_limit' to scale on"};
        }
        return r;
    } catch (const ApiError& e) {
        if (where.empty()) throw;
        throw ApiError{e.status, where + ": " + e.message};
    }
}

ServiceRequest parse_service(const std::string& text) { return parse_service_fields(parse_body(text), ""); }

namespace {

ScaleToZeroRequest parse_scale_to_zero(const json& value) {
    if (!value.is_object()) throw ApiError{400, "field 'scale_to_zero' must be an object"};
    try {
        const Fields fields(value, {"policy", "stateful", "cooldown_time_ms"});
        ScaleToZeroRequest r;
        r.policy = fields.text("policy", "off");
        if (r.policy != "off" && r.policy != "on" && r.policy != "idle")
            throw ApiError{400, "field 'policy' must be off, on or idle"};
        r.stateful = fields.boolean("stateful", false);
        r.cooldown_ms = fields.integer("cooldown_time_ms", 1000, 1, 86400000);
        return r;
    } catch (const ApiError& e) {
        throw ApiError{e.status, "scale_to_zero: " + e.message};
    }
}

}  // namespace

namespace {

std::string valid_volume_name(const std::string& name, const std::string& field) {
    if (!images::valid_name(name))
        throw ApiError{400, "field '" + field + "': '" + name +
                                "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)"};
    return name;
}

std::string mount_path(const Fields& fields) {
    const std::string at = fields.text("at");
    if (at.empty()) throw ApiError{400, "field 'at' is required: where the instance mounts the volume"};
    try {
        return volumes::normalize_mount_path(at);
    } catch (const std::invalid_argument& e) {
        throw ApiError{400, std::string("field 'at': ") + e.what()};
    }
}

// {"name": N} or {"uuid": U} (or a bare string): the one it names.
std::string reference(const json& value, const std::string& field) {
    if (value.is_string() && !value.get<std::string>().empty()) return value.get<std::string>();
    if (!value.is_object()) throw ApiError{400, "field '" + field + "' must be {\"name\": ...} or {\"uuid\": ...}"};
    const Fields by(value, {"name", "uuid"});
    const std::string id = by.has("uuid") ? by.text("uuid") : by.text("name");
    if (id.empty() || value.size() != 1) throw ApiError{400, "field '" + field + "' takes one of 'name' and 'uuid'"};
    return id;
}

std::vector<VolumeAttachRequest> parse_instance_volumes(const json& value) {
    if (!value.is_array()) throw ApiError{400, "field 'volumes' must be a list of {name, at, readonly}"};
    if (value.size() > kMaxVolumesPerInstance)
        throw ApiError{400, "field 'volumes': at most " + std::to_string(kMaxVolumesPerInstance) + " per instance"};
    std::vector<VolumeAttachRequest> out;
    for (size_t i = 0; i < value.size(); ++i) {
        const std::string where = "volumes[" + std::to_string(i) + "]";
        try {
            if (!value[i].is_object()) throw ApiError{400, "must be an object {name, at, readonly}"};
            const Fields fields(value[i], {"name", "uuid", "at", "readonly"});
            VolumeAttachRequest r;
            r.id = fields.has("uuid") ? fields.text("uuid") : fields.text("name");
            if (r.id.empty() || (fields.has("uuid") && fields.has("name")))
                throw ApiError{400, "give the volume's 'name' or its 'uuid'"};
            r.at = mount_path(fields);
            r.readonly = fields.boolean("readonly", false);
            for (const auto& earlier : out)
                if (auto conflict = volumes::mount_conflict(earlier.at, r.at); !conflict.empty())
                    throw ApiError{400, conflict};
            out.push_back(std::move(r));
        } catch (const ApiError& e) {
            throw ApiError{e.status, where + ": " + e.message};
        }
    }
    return out;
}

}  // namespace

VolumeCreateRequest parse_volume_create(const std::string& text) {
    const json body = parse_body(text);
    const Fields fields(body, {"name", "size_mb"});
    VolumeCreateRequest r;
    if (fields.has("name")) r.name = valid_volume_name(fields.text("name"), "name");
    if (!fields.has("size_mb")) throw ApiError{400, "field 'size_mb' is required"};
    r.size_mb = fields.integer("size_mb", 0, volumes::kMinSizeMb, volumes::kMaxSizeMb);
    return r;
}

VolumeAttachRequest parse_volume_attach(const std::string& text) {
    const json body = parse_body(text);
    const Fields fields(body, {"attach_to", "instance", "at", "readonly"});
    VolumeAttachRequest r;
    if (fields.has("attach_to") == fields.has("instance"))
        throw ApiError{400, "field 'attach_to' is required: {\"name\": INSTANCE} or {\"uuid\": INSTANCE}"};
    r.id =
        fields.has("attach_to") ? reference(body["attach_to"], "attach_to") : reference(body["instance"], "instance");
    r.at = mount_path(fields);
    r.readonly = fields.boolean("readonly", false);
    return r;
}

std::string parse_volume_detach(const std::string& text) {
    const json body = parse_body(text);
    const Fields fields(body, {"from", "instance"});
    if (fields.has("from") == fields.has("instance"))
        throw ApiError{400, "field 'from' is required: {\"name\": INSTANCE} or {\"uuid\": INSTANCE}"};
    return fields.has("from") ? reference(body["from"], "from") : reference(body["instance"], "instance");
}

std::string parse_volume_clone(const std::string& text) {
    const json body = parse_body(text);
    const Fields fields(body, {"name"});
    if (!fields.has("name")) throw ApiError{400, "field 'name' is required: the new volume's"};
    return valid_volume_name(fields.text("name"), "name");
}

CreateRequest parse_create(const std::string& text) {
    const json body = parse_body(text);
    const Fields fields(body, {"image", "name", "args", "env", "memory_mb", "restart_policy", "autostart", "timeout_s",
                               "service_group", "scale_to_zero", "platform", "cpu_shares", "pids_limit", "volumes"});
    CreateRequest r;
    r.image = fields.text("image");
    if (r.image.empty()) throw ApiError{400, "field 'image' is required"};
    if (fields.has("name")) {
        r.name = fields.text("name");
        if (!images::valid_name(*r.name))
            throw ApiError{400, "field 'name': '" + *r.name +
                                    "' is not a valid name (lower-case letters, digits, '.', '_', '-'; at most 63)"};
    }
    r.args = fields.text_list("args");
    r.env = fields.environment("env");
    if (fields.has("memory_mb")) r.memory_mb = fields.integer("memory_mb", 0, 16, 3072);
    using instances::Limits;
    r.limits.cpu_shares =
        fields.integer("cpu_shares", Limits::kDefaultCpuShares, Limits::kMinCpuShares, Limits::kMaxCpuShares);
    r.limits.pids_limit =
        fields.integer("pids_limit", Limits::kDefaultPidsLimit, Limits::kMinPidsLimit, Limits::kMaxPidsLimit);
    r.restart_policy = fields.text("restart_policy", "never");
    if (r.restart_policy != "never" && r.restart_policy != "always" && r.restart_policy != "on-failure")
        throw ApiError{400, "field 'restart_policy' must be never, always or on-failure"};
    r.autostart = fields.boolean("autostart", true);
    r.timeout_s = fields.integer("timeout_s", 0, 0, 3600);
    if (fields.has("service_group")) {
        const json& group = body["service_group"];
        if (!group.is_object()) throw ApiError{400, "field 'service_group' must be an object"};
        if (group.contains("services")) {
            r.new_service = parse_service_fields(group, "service_group");
        } else {
            const Fields by(group, {"name", "uuid"});
            const std::string id = by.has("uuid") ? by.text("uuid") : by.text("name");
            if (id.empty() || group.size() != 1)
                throw ApiError{400, "field 'service_group' takes one of 'name', 'uuid' or 'services'"};
            r.service = id;
        }
    }
    if (fields.has("scale_to_zero")) r.scale_to_zero = parse_scale_to_zero(body["scale_to_zero"]);
    if (fields.has("platform")) {
        r.platform = fields.text("platform");
        if (*r.platform != "kvm" && *r.platform != "proc")
            throw ApiError{400, "field 'platform' must be kvm or proc, not '" + *r.platform + "'"};
    }
    if (fields.has("volumes")) r.volumes = parse_instance_volumes(body["volumes"]);
    if (r.scale_to_zero.policy != "off" && !r.service && !r.new_service)
        throw ApiError{400, "field 'scale_to_zero': an instance scales to zero behind a service: give a service_group"};
    return r;
}

StopRequest parse_stop_fields(const json& body) {
    const Fields fields(body, {"drain_timeout_ms", "force"});
    return {fields.integer("drain_timeout_ms", 5000, 0, 600000), fields.boolean("force", false)};
}

StopRequest parse_stop(const std::string& text) { return parse_stop_fields(parse_body(text)); }

std::vector<BatchItem> parse_batch(const std::string& text) {
    if (text.size() > kMaxBody) throw ApiError{413, "the request body is larger than 1 MiB"};
    const json body = json::parse(text, nullptr, false);
    if (body.is_discarded()) throw ApiError{400, "the request body is not valid JSON"};
    if (!body.is_array() || body.empty())
        throw ApiError{400, "a batch request is a list of {\"uuid\": ...} or {\"name\": ...} objects"};
    if (body.size() > 1000) throw ApiError{400, "a batch names at most 1000 instances"};
    std::vector<BatchItem> items;
    for (size_t i = 0; i < body.size(); ++i) {
        const json& item = body[i];
        const std::string where = "item " + std::to_string(i);
        if (!item.is_object()) throw ApiError{400, where + " must be an object"};
        const bool by_uuid = item.contains("uuid"), by_name = item.contains("name");
        if (by_uuid == by_name) throw ApiError{400, where + " must have exactly one of 'uuid' and 'name'"};
        const json& id = item[by_uuid ? "uuid" : "name"];
        if (!id.is_string()) throw ApiError{400, where + ": '" + (by_uuid ? "uuid" : "name") + "' must be a string"};
        json rest = item;
        rest.erase(by_uuid ? "uuid" : "name");
        items.push_back({id.get<std::string>(), rest});
    }
    return items;
}

}  // namespace kiln::api
