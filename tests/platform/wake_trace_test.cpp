// A wake's trace (platform/services/wake_trace.h): the steps it reports from kilnd's moments and
// the tender's, for a tender launched for the wake and for a restore prepared before it.
#include "services/wake_trace.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

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

using Moments = std::function<nlohmann::json(WakeClock::time_point spawned)>;

// One wake, a millisecond between its moments: held, decided, spawned, then the tender's moments
// (from `moments`, given the spawn), ready, routed, connected.
nlohmann::json wake(WakeLog& log, const Moments& moments) {
    const auto pause = [] { std::this_thread::sleep_for(milliseconds(1)); };
    log.held("web", WakeClock::now());
    pause();
    log.decided("web", "i1", "proc", true);
    pause();
    const auto spawned = WakeClock::now();
    log.spawned("web", spawned);
    const nlohmann::json tender = moments(spawned);
    pause();
    log.ready("web", "i1");
    pause();
    log.routed("web", "i1");
    pause();
    log.connected("web", "i1", WakeClock::now());
    log.tender_moments("web", "i1", tender);
    return *log.last("web");
}

nlohmann::json moments_at(WakeClock::time_point started, WakeClock::time_point forked, WakeClock::time_point running) {
    return {{"started_ns", ns_of(started)},
            {"loaded_ns", ns_of(started + (forked - started) / 3)},
            {"confined_ns", ns_of(started + 2 * (forked - started) / 3)},
            {"forked_ns", ns_of(forked)},
            {"running_ns", ns_of(running)}};
}

void expect_contiguous(const nlohmann::json& trace) {
    double sum = 0;
    for (const auto& step : trace["steps"]) {
        EXPECT_GE(step["ms"].get<double>(), 0) << trace.dump();
        sum += step["ms"].get<double>();
    }
    EXPECT_NEAR(sum, trace["total_ms"].get<double>(), 1e-6) << trace.dump();  // nothing counted twice
}

TEST(WakeTraceTest, ATenderLaunchedForTheWakeReportsEachOfItsSteps) {
    WakeLog log;
    const auto trace = wake(log, [](WakeClock::time_point spawned) {
        return moments_at(spawned + std::chrono::microseconds(100), spawned + std::chrono::microseconds(400),
                          spawned + std::chrono::microseconds(500));
    });
    EXPECT_EQ(names(trace), (std::vector<std::string>{"queue", "spawn", "launch", "load", "confine", "fork", "resume",
                                                      "notify", "route", "connect"}));
    EXPECT_FALSE(trace["prepared"]);
    expect_contiguous(trace);
}

TEST(WakeTraceTest, ARestorePreparedBeforeTheWakeReportsOnlyItsResume) {
    WakeLog log;
    // Launched, loaded, confined and forked seconds before the request; running after the spawn.
    const auto trace = wake(log, [](WakeClock::time_point spawned) {
        return moments_at(spawned - std::chrono::seconds(5), spawned - std::chrono::seconds(4),
                          spawned + std::chrono::microseconds(500));
    });
    EXPECT_EQ(names(trace), (std::vector<std::string>{"queue", "spawn", "resume", "connect"}));
    EXPECT_TRUE(trace["prepared"]);
    EXPECT_NEAR(trace["steps"][2]["ms"].get<double>(), 0.5, 1e-6);
    expect_contiguous(trace);
}

TEST(WakeTraceTest, APreparedRestoreThatAnsweredBeforeItsTenderSpokeHasNoNegativeStep) {
    WakeLog log;
    // The kernel ran and answered the SYN; its tender heard of it after the connect.
    const auto trace = wake(log, [](WakeClock::time_point spawned) {
        return moments_at(spawned - std::chrono::seconds(5), spawned - std::chrono::seconds(4),
                          spawned + std::chrono::seconds(1));
    });
    EXPECT_EQ(names(trace), (std::vector<std::string>{"queue", "spawn", "resume", "connect"}));
    expect_contiguous(trace);
}

TEST(WakeTraceTest, ConnectionsHeldAgainDuringAWakeStayInThatWakesTrace) {
    WakeLog log;
    const auto connected = WakeClock::now();
    const auto first_held = connected - milliseconds(50), held_again = connected - milliseconds(10);
    log.held("web", first_held);
    log.decided("web", "i1", "proc", true);
    log.spawned("web", first_held + milliseconds(1));
    log.held("web", held_again);  // its instance ended before the connect: held again
    log.decided("web", "i1", "proc", true);
    log.ready("web", "i1");
    log.routed("web", "i1");
    log.connected("web", "i1", connected);
    log.tender_moments("web", "i1", nullptr);
    const auto trace = *log.last("web");
    EXPECT_DOUBLE_EQ(trace["total_ms"].get<double>(), 50.0);  // from the first hold, not the second
}

}  // namespace
}  // namespace kiln::services
