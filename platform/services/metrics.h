// Per-service metrics in Prometheus text (checked by promtool in the tests): what the load
// balancer did for each service.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "balancer/balancer.h"
#include "services/service_store.h"

namespace kiln::services {

std::string prometheus_text(const std::vector<std::pair<Service, balancer::ServiceStats>>& services);

}  // namespace kiln::services
