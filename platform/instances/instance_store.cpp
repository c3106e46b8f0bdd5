#include "instances/instance_store.h"

#include <sys/random.h>

#include <cstdio>
#include <stdexcept>

namespace kiln::instances {

namespace {

constexpr const char* kColumns =
    "uuid, name, image, image_digest, args, env, memory_mb, restart_policy, state, stop_reason, exit_code, pid, "
    "pid_start, created_ns, started_ns, stopped_ns, restarts, starts, vmm_status, ip, service, scale_to_zero, "
    "platform, cpu_shares, pids_limit";

Instance from_row(const store::Statement& row) {
    Instance i;
    i.uuid = row.text(0);
    i.name = row.text(1);
    i.image = row.text(2);
    i.image_digest = row.text(3);
    i.args = nlohmann::json::parse(row.text(4)).get<std::vector<std::string>>();
    i.env = nlohmann::json::parse(row.text(5)).get<std::vector<std::string>>();
    i.memory_mb = row.integer(6);
    i.restart_policy = row.text(7);
    i.state = row.text(8);
    i.stop_reason = row.integer(9);
    if (!row.is_null(10)) i.exit_code = row.integer(10);
    i.pid = row.integer(11);
    i.pid_start = row.integer(12);
    i.created_ns = row.integer(13);
    i.started_ns = row.integer(14);
    i.stopped_ns = row.integer(15);
    i.restarts = row.integer(16);
    i.starts = row.integer(17);
    if (!row.is_null(18)) i.vmm_status = row.integer(18);
    i.ip = row.text(19);
    i.service = row.text(20);
    i.scale_to_zero = ScaleToZero::from_json(nlohmann::json::parse(row.text(21)));
    i.platform = row.text(22);
    i.limits.cpu_shares = row.integer(23);
    i.limits.pids_limit = row.integer(24);
    return i;
}

// Binds every column but the uuid, from index 2 on, in kColumns' order.
void bind_fields(store::Statement& s, const Instance& i) {
    s.bind(2, i.name).bind(3, i.image).bind(4, i.image_digest);
    s.bind(5, nlohmann::json(i.args).dump()).bind(6, nlohmann::json(i.env).dump());
    s.bind(7, i.memory_mb).bind(8, i.restart_policy).bind(9, i.state).bind(10, i.stop_reason);
    if (i.exit_code)
        s.bind(11, *i.exit_code);
    else
        s.bind_null(11);
    s.bind(12, i.pid).bind(13, i.pid_start).bind(14, i.created_ns).bind(15, i.started_ns).bind(16, i.stopped_ns);
    s.bind(17, i.restarts).bind(18, i.starts);
    if (i.vmm_status)
        s.bind(19, *i.vmm_status);
    else
        s.bind_null(19);
    s.bind(20, i.ip).bind(21, i.service).bind(22, i.scale_to_zero.to_json().dump()).bind(23, i.platform);
    s.bind(24, i.limits.cpu_shares).bind(25, i.limits.pids_limit);
}

}  // namespace

std::string new_uuid() {
    unsigned char b[16];
    if (::getrandom(b, sizeof(b), 0) != static_cast<ssize_t>(sizeof(b))) throw std::runtime_error("getrandom");
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // variant 1
    char text[37];
    std::snprintf(text, sizeof(text), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                  b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return text;
}

nlohmann::json ScaleToZero::to_json() const {
    return {{"policy", policy}, {"stateful", stateful}, {"cooldown_time_ms", cooldown_ms}};
}

ScaleToZero ScaleToZero::from_json(const nlohmann::json& j) {
    ScaleToZero s;
    s.policy = j.value("policy", s.policy);
    s.stateful = j.value("stateful", s.stateful);
    s.cooldown_ms = j.value("cooldown_time_ms", s.cooldown_ms);
    return s;
}

nlohmann::json Instance::to_json() const {
    nlohmann::json j = {{"uuid", uuid},           {"name", name},
                        {"image", image},         {"image_digest", image_digest},
                        {"args", args},           {"env", env},
                        {"memory_mb", memory_mb}, {"restart_policy", restart_policy},
                        {"state", state},         {"created_ns", created_ns},
                        {"restarts", restarts},   {"starts", starts}};
    if (state == kStopped && stopped_ns != 0) j["stop_reason"] = stop_reason;
    if (exit_code) j["exit_code"] = *exit_code;
    if (vmm_status) j["vmm_status"] = *vmm_status;
    if (pid != 0) j["pid"] = pid;
    if (started_ns != 0) j["started_ns"] = started_ns;
    if (stopped_ns != 0) j["stopped_ns"] = stopped_ns;
    if (!ip.empty()) j["private_ip"] = ip;
    if (!ip.empty()) j["private_fqdn"] = name + ".internal";
    if (!service.empty()) j["service_group"] = {{"uuid", service}};
    j["scale_to_zero"] = scale_to_zero.to_json();
    j["cpu_shares"] = limits.cpu_shares;
    j["pids_limit"] = limits.pids_limit;
    j["platform"] = platform;
    return j;
}

InstanceStore::InstanceStore(store::Database& db) : db_(db) {
    db_.exec(
        "CREATE TABLE IF NOT EXISTS instances (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, image TEXT NOT NULL, "
        "image_digest TEXT NOT NULL, args TEXT NOT NULL, env TEXT NOT NULL, memory_mb INTEGER NOT NULL, "
        "restart_policy TEXT NOT NULL, state TEXT NOT NULL, stop_reason INTEGER NOT NULL, exit_code INTEGER, "
        "pid INTEGER NOT NULL, pid_start INTEGER NOT NULL, created_ns INTEGER NOT NULL, started_ns INTEGER NOT NULL, "
        "stopped_ns INTEGER NOT NULL, restarts INTEGER NOT NULL, starts INTEGER NOT NULL, vmm_status INTEGER)");
    // Columns added since the first release: a state directory made before gets them here.
    const std::pair<const char*, const char*> added[] = {
        {"ip", "TEXT NOT NULL DEFAULT ''"},
        {"service", "TEXT NOT NULL DEFAULT ''"},
        {"scale_to_zero", "TEXT NOT NULL DEFAULT '{}'"},
        {"platform", "TEXT NOT NULL DEFAULT 'kvm'"},  // every instance before was a VM
        {"cpu_shares", "INTEGER NOT NULL DEFAULT 1024"},
        {"pids_limit", "INTEGER NOT NULL DEFAULT 64"},
    };
    for (const auto& [column, type] : added) {
        store::Statement has(db_, "SELECT 1 FROM pragma_table_info('instances') WHERE name = ?");
        has.bind(1, column);
        if (!has.step()) db_.exec(std::string("ALTER TABLE instances ADD COLUMN ") + column + " " + type);
    }
    db_.exec("CREATE INDEX IF NOT EXISTS instances_by_state ON instances (state)");
    db_.exec("CREATE INDEX IF NOT EXISTS instances_by_service ON instances (service, created_ns)");
}

void InstanceStore::insert(const Instance& instance) {
    store::Statement s(db_, (std::string("INSERT INTO instances (") + kColumns +
                             ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                                .c_str());
    s.bind(1, instance.uuid);
    bind_fields(s, instance);
    s.step();
}

void InstanceStore::update(const Instance& instance) {
    store::Statement s(db_,
                       "UPDATE instances SET name = ?2, image = ?3, image_digest = ?4, args = ?5, env = ?6, "
                       "memory_mb = ?7, restart_policy = ?8, state = ?9, stop_reason = ?10, exit_code = ?11, "
                       "pid = ?12, pid_start = ?13, created_ns = ?14, started_ns = ?15, stopped_ns = ?16, "
                       "restarts = ?17, starts = ?18, vmm_status = ?19, ip = ?20, service = ?21, "
                       "scale_to_zero = ?22, platform = ?23, cpu_shares = ?24, pids_limit = ?25 WHERE uuid = ?1");
    s.bind(1, instance.uuid);
    bind_fields(s, instance);
    s.step();
}

void InstanceStore::remove(const std::string& uuid) {
    store::Statement(db_, "DELETE FROM instances WHERE uuid = ?").bind(1, uuid).step();
}

std::optional<Instance> InstanceStore::find(const std::string& uuid_or_name) {
    store::Statement s(db_,
                       (std::string("SELECT ") + kColumns + " FROM instances WHERE uuid = ?1 OR name = ?1").c_str());
    s.bind(1, uuid_or_name);
    if (!s.step()) return std::nullopt;
    return from_row(s);
}

namespace {

std::vector<Instance> rows(store::Statement& s) {
    std::vector<Instance> out;
    while (s.step()) out.push_back(from_row(s));
    return out;
}

}  // namespace

std::vector<Instance> InstanceStore::list() {
    store::Statement s(db_, (std::string("SELECT ") + kColumns + " FROM instances ORDER BY created_ns").c_str());
    return rows(s);
}

std::vector<Instance> InstanceStore::list_live() {
    store::Statement s(db_, (std::string("SELECT ") + kColumns + " FROM instances WHERE state IN (?, ?, ?)").c_str());
    s.bind(1, kStarting).bind(2, kRunning).bind(3, kStopping);
    return rows(s);
}

std::vector<Instance> InstanceStore::list_of_service(const std::string& service_uuid) {
    store::Statement s(
        db_, (std::string("SELECT ") + kColumns + " FROM instances WHERE service = ? ORDER BY created_ns").c_str());
    s.bind(1, service_uuid);
    return rows(s);
}

std::vector<std::string> InstanceStore::addresses() {
    store::Statement s(db_, "SELECT ip FROM instances WHERE ip != ''");
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

}  // namespace kiln::instances
