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

}  // namespace

std::string prometheus_text(const std::vector<std::pair<Service, balancer::ServiceStats>>& services) {
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
        for (const auto& [service, stats] : services) {
            std::snprintf(number, sizeof(number), "%.17g", family.value(stats));
            // Service names are [a-z0-9._-]: nothing to escape in a label value.
            out.append(family.name).append("{service_uuid=\"").append(service.uuid);
            out.append("\",service_name=\"").append(service.name).append("\"} ").append(number).append("\n");
        }
    }
    return out;
}

}  // namespace kiln::services
