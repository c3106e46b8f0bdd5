#include "instances/metrics.h"

#include <cstdio>
#include <iterator>

namespace kiln::instances {

namespace {

// Unikraft Cloud's names, with Prometheus' conventions where promtool's lint insists: counters end
// in _total, units are spelt out (instance_cpu_time_s is instance_cpu_seconds_total here).
struct Family {
    const char* name;  // Prometheus name
    const char* key;   // the JSON key it comes from
    const char* type;
    const char* help;
    double scale;  // JSON unit to the Prometheus base unit
};

constexpr Family kFamilies[] = {
    {"instance_state", "state_code", "gauge", "Instance state: 0 stopped, 1 starting, 2 running, 4 stopping.", 1},
    {"instance_starts_total", "start_count", "counter", "Times the instance was started.", 1},
    {"instance_restarts_total", "restart_count", "counter", "Restarts by the restart policy since it last ran well.",
     1},
    {"instance_started_at", "started_at", "gauge", "When the instance last started, in Unix seconds.", 1},
    {"instance_stopped_at", "stopped_at", "gauge", "When the instance last stopped, in Unix seconds.", 1},
    {"instance_uptime_seconds", "uptime_ms", "gauge", "Seconds the instance has run since it last started.", 1e-3},
    {"instance_rss_bytes", "rss_bytes", "gauge", "Resident memory of the instance's monitor, guest included.", 1},
    {"instance_cpu_seconds_total", "cpu_time_ms", "counter", "CPU time of the instance's monitor and guest.", 1e-3},
    {"instance_rx_bytes_total", "rx_bytes", "counter", "Bytes the instance received.", 1},
    {"instance_rx_packets_total", "rx_packets", "counter", "Packets the instance received.", 1},
    {"instance_tx_bytes_total", "tx_bytes", "counter", "Bytes the instance sent.", 1},
    {"instance_tx_packets_total", "tx_packets", "counter", "Packets the instance sent.", 1},
    {"instance_nconns", "nconns", "gauge", "Connections the load balancer has open to the instance.", 1},
    {"instance_nreqs_total", "nreqs", "counter", "Connections the load balancer gave the instance.", 1},
};

// Bucket bounds of instance_wakeup_latency_seconds; the JSON carries counts per bucket.
constexpr double kWakeBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// Prometheus label values escape backslash, double quote and newline.
std::string label_value(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

}  // namespace

int state_code(const std::string& state) {
    if (state == kStarting) return 1;
    if (state == kRunning) return 2;
    if (state == "draining") return 3;
    if (state == kStopping) return 4;
    if (state == "standby") return 5;
    return 0;
}

nlohmann::json instance_metrics(const Instance& instance, const nlohmann::json& stats, int64_t now_ns) {
    const bool running = instance.state == kRunning && instance.started_ns != 0;
    nlohmann::json m = {{"uuid", instance.uuid},
                        {"name", instance.name},
                        {"state", instance.state},
                        {"state_code", state_code(instance.state)},
                        {"start_count", instance.starts},
                        {"restart_count", instance.restarts},
                        {"started_at", instance.started_ns / 1000000000},
                        {"stopped_at", instance.stopped_ns / 1000000000},
                        {"uptime_ms", running ? (now_ns - instance.started_ns) / 1000000 : 0},
                        {"rss_bytes", 0},
                        {"cpu_time_ms", 0},
                        {"rx_bytes", 0},
                        {"rx_packets", 0},
                        {"tx_bytes", 0},
                        {"tx_packets", 0},
                        {"nconns", 0},
                        {"nreqs", 0},
                        {"wakeup_latency",
                         {{"buckets", std::vector<int64_t>(std::size(kWakeBounds), 0)}, {"sum_s", 0.0}, {"count", 0}}}};
    if (stats.is_object()) {
        m["rss_bytes"] = stats.value("rss_bytes", 0);
        m["cpu_time_ms"] = stats.value("cpu_time_us", 0) / 1000;
        if (stats.contains("net"))
            for (const char* key : {"rx_bytes", "rx_packets", "tx_bytes", "tx_packets"})
                m[key] = stats["net"].value(key, 0);
    }
    return m;
}

namespace {

std::string labels(const nlohmann::json& m) {
    std::string out;
    out.append("instance_uuid=\"")
        .append(label_value(m["uuid"]))
        .append("\",instance_name=\"")
        .append(label_value(m["name"]))
        .append("\"");
    return out;
}

// instance_wakeup_latency_seconds: connection held while the instance woke, to connected.
void append_wakeup_histogram(std::string& out, const std::vector<nlohmann::json>& metrics) {
    const char* name = "instance_wakeup_latency_seconds";
    out.append("# HELP ").append(name).append(" From a connection held for a waking instance to its connect.\n");
    out.append("# TYPE ").append(name).append(" histogram\n");
    char number[64];
    for (const auto& m : metrics) {
        const auto& h = m["wakeup_latency"];
        int64_t cumulative = 0;
        for (size_t i = 0; i < std::size(kWakeBounds); ++i) {
            cumulative += h["buckets"][i].get<int64_t>();
            std::snprintf(number, sizeof(number), "%g", kWakeBounds[i]);
            out.append(name).append("_bucket{").append(labels(m)).append(",le=\"").append(number).append("\"} ");
            out.append(std::to_string(cumulative)).append("\n");
        }
        const std::string count = std::to_string(h["count"].get<int64_t>());
        out.append(name).append("_bucket{").append(labels(m)).append(",le=\"+Inf\"} ").append(count).append("\n");
        std::snprintf(number, sizeof(number), "%.17g", h["sum_s"].get<double>());
        out.append(name).append("_sum{").append(labels(m)).append("} ").append(number).append("\n");
        out.append(name).append("_count{").append(labels(m)).append("} ").append(count).append("\n");
    }
}

}  // namespace

std::string prometheus_text(const std::vector<nlohmann::json>& metrics) {
    std::string out;
    char number[64];
    for (const Family& family : kFamilies) {
        out.append("# HELP ").append(family.name).append(" ").append(family.help).append("\n");
        out.append("# TYPE ").append(family.name).append(" ").append(family.type).append("\n");
        for (const auto& m : metrics) {
            const double value = m[family.key].get<double>() * family.scale;
            std::snprintf(number, sizeof(number), "%.17g", value);
            out.append(family.name).append("{").append(labels(m)).append("} ").append(number).append("\n");
        }
    }
    append_wakeup_histogram(out, metrics);
    return out;
}

}  // namespace kiln::instances
