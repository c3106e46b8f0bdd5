// Per-service metrics in Prometheus text (checked by promtool in the tests): what the load
// balancer did for each service, and where its wakes' time went.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "balancer/balancer.h"
#include "services/service_store.h"
#include "services/wake_trace.h"

namespace kiln::services {

struct ServiceFigures {
    Service service;
    balancer::ServiceStats stats;
    std::map<std::string, StepHistogram> wake_steps;  // by step (wake_trace.h), and "total"
};

std::string prometheus_text(const std::vector<ServiceFigures>& services);

}  // namespace kiln::services
