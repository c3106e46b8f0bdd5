#include "services/metrics.h"

#include <cstdio>
#include <functional>

namespace kiln::services {

namespace {

struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::function<double(const balancer::ServiceStats&)> value;
};

std::string labels(const Service& service) {
    // Service names are [a-z0-9._-]: nothing to escape in a label value.
    return "service_uuid=\"" + service.uuid + "\",service_name=\"" + service.name + "\"";
}

// service_wake_step_seconds{step=...}: one histogram per step of a wake (wake_trace.h).
void append_wake_steps(std::string& out, const std::vector<ServiceFigures>& services) {
    const char* name = "service_wake_step_seconds";
    out.append("# HELP ").append(name).append(" Where a wake's time went, per step (total: held to connected).\n");
    out.append("# TYPE ").append(name).append(" histogram\n");
    char number[64];
    for (const auto& figures : services)
        for (const auto& [step, h] : figures.wake_steps) {
            const std::string l = labels(figures.service) + ",step=\"" + step + "\"";
            int64_t cumulative = 0;
            for (size_t i = 0; i < std::size(StepHistogram::kBounds); ++i) {
                cumulative += h.buckets[i];
                std::snprintf(number, sizeof(number), "%g", StepHistogram::kBounds[i]);
                out.append(name).append("_bucket{").append(l).append(",le=\"").append(number).append("\"} ");
                out.append(std::to_string(cumulative)).append("\n");
            }
            out.append(name).append("_bucket{").append(l).append(",le=\"+Inf\"} ");
            out.append(std::to_string(h.count)).append("\n");
            std::snprintf(number, sizeof(number), "%.17g", h.sum);
            out.append(name).append("_sum{").append(l).append("} ").append(number).append("\n");
            out.append(name).append("_count{").append(l).append("} ").append(std::to_string(h.count)).append("\n");
        }
}

}  // namespace

std::string prometheus_text(const std::vector<ServiceFigures>& services) {
    const Family families[] = {
        {"service_connections_total", "counter", "Connections the service's ports accepted.",
         [](const auto& s) { return static_cast<double>(s.accepted); }},
        {"service_failed_connections_total", "counter", "Connections closed without reaching an instance.",
         [](const auto& s) { return static_cast<double>(s.failed); }},
        {"service_queued_connections", "gauge", "Connections held now, waiting for an instance to wake or free up.",
         [](const auto& s) { return static_cast<double>(s.queued); }},
        {"service_wakeups_total", "counter", "Connections that had to wait for an instance.",
         [](const auto& s) { return static_cast<double>(s.wake_latencies.count); }},
        {"service_wakeup_latency_seconds_total", "counter", "Seconds those connections waited, in all.",
         [](const auto& s) { return s.wake_latencies.sum; }},
    };
    std::string out;
    char number[64];
    for (const Family& family : families) {
        out.append("# HELP ").append(family.name).append(" ").append(family.help).append("\n");
        out.append("# TYPE ").append(family.name).append(" ").append(family.type).append("\n");
        for (const auto& figures : services) {
            std::snprintf(number, sizeof(number), "%.17g", family.value(figures.stats));
            out.append(family.name).append("{").append(labels(figures.service)).append("} ");
            out.append(number).append("\n");
        }
    }
    append_wake_steps(out, services);
    return out;
}

}  // namespace kiln::services
