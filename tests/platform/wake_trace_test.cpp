// A wake's trace (platform/services/wake_trace.h): the steps it reports from kilnd's moments and
// the tender's, for a tender launched for the wake and for a restore prepared before it.
#include "services/wake_trace.h"

#include <gtest/gtest.h>

namespace kiln::services {
namespace {

using std::chrono::milliseconds;

int64_t ns_of(WakeClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::vector<std::string> names(const nlohmann::json& trace) {
    std::vector<std::string> out;
    for (const auto& step : trace["steps"]) out.push_back(step["step"]);
    return out;
}

// One wake: held at `t0`, decided 1 ms later, spawned 2 ms later, ready at 10, routed at 11,
// connected at 12; the tender's moments as given.
nlohmann::json wake(WakeLog& log, WakeClock::time_point t0, const nlohmann::json& moments) {
    log.held("web", t0);
    log.decided("web", "i1", "proc", true);
    log.spawned("web", t0 + milliseconds(2));
    log.ready("web", "i1");
    log.routed("web", "i1");
    log.connected("web", "i1", WakeClock::now());
    log.tender_moments("web", "i1", moments);
    return *log.last("web");
}

TEST(WakeTraceTest, ATenderLaunchedForTheWakeReportsEachOfItsSteps) {
    WakeLog log;
    const auto t0 = WakeClock::now() - milliseconds(20);
    const nlohmann::json moments = {{"started_ns", ns_of(t0 + milliseconds(3))},
                                    {"loaded_ns", ns_of(t0 + milliseconds(4))},
                                    {"confined_ns", ns_of(t0 + milliseconds(5))},
                                    {"forked_ns", ns_of(t0 + milliseconds(6))},
                                    {"running_ns", ns_of(t0 + milliseconds(7))}};
    const auto trace = wake(log, t0, moments);
    EXPECT_EQ(names(trace), (std::vector<std::string>{"queue", "spawn", "launch", "load", "confine", "fork", "resume",
                                                      "notify", "route", "connect"}));
    EXPECT_FALSE(trace["prepared"]);
}

TEST(WakeTraceTest, ARestorePreparedBeforeTheWakeReportsOnlyItsResume) {
    WakeLog log;
    const auto t0 = WakeClock::now() - milliseconds(20);
    // Launched, loaded, confined and forked seconds before the request; running after the spawn.
    const auto before = t0 - std::chrono::seconds(5);
    const nlohmann::json moments = {{"started_ns", ns_of(before)},
                                    {"loaded_ns", ns_of(before + milliseconds(1))},
                                    {"confined_ns", ns_of(before + milliseconds(2))},
                                    {"forked_ns", ns_of(before + milliseconds(3))},
                                    {"running_ns", ns_of(t0 + milliseconds(3))}};
    const auto trace = wake(log, t0, moments);
    EXPECT_EQ(names(trace), (std::vector<std::string>{"queue", "spawn", "resume", "notify", "route", "connect"}));
    EXPECT_TRUE(trace["prepared"]);
    EXPECT_NEAR(trace["steps"][2]["ms"].get<double>(), 1.0, 1e-6);  // spawned at 2 ms, running at 3
    double sum = 0;
    for (const auto& step : trace["steps"]) sum += step["ms"].get<double>();
    EXPECT_NEAR(sum, trace["total_ms"].get<double>(), 1e-6);  // contiguous: nothing counted twice
}

}  // namespace
}  // namespace kiln::services
