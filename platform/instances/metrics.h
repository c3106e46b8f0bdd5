// Instance metrics, named after Unikraft Cloud's (with Prometheus' _total and unit conventions): as JSON, or as
// Prometheus text exposition (checked by promtool in the tests). Live numbers come from each kiln-vmm's `stats`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "instances/instance_store.h"

namespace kiln::instances {

// The numeric code of a state in instance_state: stopped 0, starting 1, running 2, draining 3,
// stopping 4, standby 5.
int state_code(const std::string& state);

// One instance's metrics; `stats` is kiln-vmm's answer to {"op":"stats"} (null if none runs).
nlohmann::json instance_metrics(const Instance& instance, const nlohmann::json& stats, int64_t now_ns);

// The metrics of several instances as Prometheus text, one family per metric.
std::string prometheus_text(const std::vector<nlohmann::json>& metrics);

}  // namespace kiln::instances
