// Network fault injection: the --net settings that turn it on, the seeded per-frame model, and
// the link that delays, drops and reorders frames.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "net/fault_model.h"
#include "options.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

using namespace std::chrono_literals;
using Clock = FaultyLink::Clock;

TEST(NetFaultOptions, ParsesEverySetting) {
    const NetOptions net = parse_net_option("tap=t0,loss=1,reorder=0.5%,delay=1.5,seed=42");
    EXPECT_EQ(net.tap, "t0");
    EXPECT_DOUBLE_EQ(net.faults.loss_percent, 1.0);
    EXPECT_DOUBLE_EQ(net.faults.reorder_percent, 0.5);
    EXPECT_EQ(net.faults.delay, 1500us);
    EXPECT_EQ(net.faults.seed, 42u);
    EXPECT_TRUE(net.faults.active());
    EXPECT_EQ(net.faults.describe(), "loss=1% reorder=0.5% delay=1.5ms seed=42");

    EXPECT_EQ(parse_net_option("tap=t0,delay=0.25").faults.delay, 250us);
    EXPECT_EQ(parse_net_option("tap=t0,loss=100").faults.loss_percent, 100.0);
    EXPECT_EQ(parse_net_option("tap=t0,seed=18446744073709551615").faults.seed, UINT64_MAX);
    EXPECT_TRUE(parse_net_option("tap=t0,reorder=3").faults.active());
}

TEST(NetFaultOptions, NoFaultsUnlessAsked) {
    const NetOptions net = parse_net_option("tap=t0,mac=52:54:00:12:34:56");
    EXPECT_FALSE(net.faults.active());
    EXPECT_FALSE(parse_net_option("tap=t0,loss=0,reorder=0,delay=0,seed=1").faults.active());
}

TEST(NetFaultOptions, RefusesBadValuesNamingThem) {
    struct Case {
        const char* setting;
        const char* says;
    };
    for (const Case& c : std::initializer_list<Case>{
             {"loss=abc", "loss=abc is not a percentage"},
             {"loss=-1", "loss=-1 is not a percentage"},
             {"loss=100.5", "loss=100.5 is not a percentage"},
             {"loss=", "loss= is not a percentage"},
             {"loss=1e1", "loss=1e1 is not a percentage"},
             {"loss=nan", "loss=nan"},
             {"loss=inf", "loss=inf"},
             {"loss=1%%", "loss=1%%"},
             {"loss=.", "loss=."},
             {"reorder=200", "reorder=200 is not a percentage"},
             {"delay=-1", "delay=-1 is not a delay"},
             {"delay=1ms", "delay=1ms is not a delay"},
             {"delay=10001", "delay=10001 is not a delay"},
             {"delay=", "delay= is not a delay"},
             {"seed=-1", "seed=-1 is not a seed"},
             {"seed=1.5", "seed=1.5 is not a seed"},
             {"seed=0x10", "seed=0x10 is not a seed"},
             {"seed=18446744073709551616", "seed=18446744073709551616 is not a seed"},
             {"seed=", "seed= is not a seed"},
             {"jitter=1", "unknown or empty setting 'jitter=1'"},
         }) {
        const std::string option = std::string("tap=t0,") + c.setting;
        try {
            parse_net_option(option);
            ADD_FAILURE() << "accepted " << option;
        } catch (const VmmError& e) {
            const std::string message = e.what();
            EXPECT_NE(message.find("--net: "), std::string::npos) << message;
            EXPECT_NE(message.find(c.says), std::string::npos) << message;
        }
    }
}

std::vector<FaultModel::Fate> fates(const FaultSettings& settings, uint64_t stream, size_t n) {
    FaultModel model(settings, stream);
    std::vector<FaultModel::Fate> out(n);
    for (auto& fate : out) fate = model.next();
    return out;
}

size_t count(const std::vector<FaultModel::Fate>& all, FaultModel::Fate fate) {
    return static_cast<size_t>(std::count(all.begin(), all.end(), fate));
}

TEST(FaultModel, TheSeedDecidesEverything) {
    FaultSettings settings;
    settings.loss_percent = 10;
    settings.reorder_percent = 10;
    settings.seed = 1234;
    const auto first = fates(settings, 0, 1000);
    EXPECT_EQ(fates(settings, 0, 1000), first);  // replayable
    EXPECT_NE(fates(settings, 1, 1000), first);  // the directions differ
    settings.seed = 1235;
    EXPECT_NE(fates(settings, 0, 1000), first);
}

TEST(FaultModel, RatesMatchTheSettings) {
    FaultSettings settings;
    settings.loss_percent = 1;
    settings.reorder_percent = 0.5;
    settings.seed = 7;
    const auto all = fates(settings, 0, 200000);
    // Binomial: 2000 +- 45 (1 sigma) lost, 995 +- 31 held; 5 sigma bounds.
    EXPECT_NEAR(static_cast<double>(count(all, FaultModel::Fate::kLose)), 2000, 225);
    EXPECT_NEAR(static_cast<double>(count(all, FaultModel::Fate::kHoldBack)), 995, 160);

    settings.loss_percent = 0;
    settings.reorder_percent = 0;
    EXPECT_EQ(count(fates(settings, 0, 10000), FaultModel::Fate::kPass), 10000u);
    settings.loss_percent = 100;
    EXPECT_EQ(count(fates(settings, 0, 10000), FaultModel::Fate::kLose), 10000u);
    settings.loss_percent = 0;
    settings.reorder_percent = 100;
    EXPECT_EQ(count(fates(settings, 0, 10000), FaultModel::Fate::kHoldBack), 10000u);
}

TEST(FaultModel, AddingReorderingLosesTheSameFrames) {
    FaultSettings settings;
    settings.loss_percent = 5;
    settings.seed = 99;
    const auto loss_only = fates(settings, 0, 5000);
    settings.reorder_percent = 20;
    const auto with_reorder = fates(settings, 0, 5000);
    for (size_t i = 0; i < loss_only.size(); ++i)
        EXPECT_EQ(loss_only[i] == FaultModel::Fate::kLose, with_reorder[i] == FaultModel::Fate::kLose) << i;
}

FaultyLink::Frame frame(uint8_t tag, size_t size = 1) { return FaultyLink::Frame(size, tag); }

std::vector<uint8_t> drain(FaultyLink& link, Clock::time_point now) {
    std::vector<uint8_t> tags;
    while (auto f = link.pop_due(now)) tags.push_back(f->front());
    return tags;
}

TEST(FaultyLink, DelaysEveryFrameInOrder) {
    FaultSettings settings;
    settings.delay = 1ms;
    FaultyLink link(settings, 0);
    const Clock::time_point t0{};
    EXPECT_FALSE(link.next_due().has_value());
    EXPECT_EQ(link.offer(frame(1), t0), FaultyLink::Offer::kQueued);
    EXPECT_EQ(link.offer(frame(2), t0 + 100us), FaultyLink::Offer::kQueued);
    EXPECT_EQ(link.offer(frame(3), t0 + 200us), FaultyLink::Offer::kQueued);
    EXPECT_TRUE(drain(link, t0 + 999us).empty());
    EXPECT_EQ(link.next_due(), t0 + 1ms);
    EXPECT_EQ(drain(link, t0 + 1100us), (std::vector<uint8_t>{1, 2}));
    EXPECT_EQ(link.next_due(), t0 + 1200us);
    EXPECT_EQ(drain(link, t0 + 5ms), (std::vector<uint8_t>{3}));
    EXPECT_FALSE(link.next_due().has_value());
    EXPECT_EQ(link.queued(), 0u);
}

// The first seed (for stream 0) whose first fates are `want`.
uint64_t seed_starting_with(FaultSettings settings, std::vector<FaultModel::Fate> want) {
    for (uint64_t seed = 0;; ++seed) {
        settings.seed = seed;
        if (fates(settings, 0, want.size()) == want) return seed;
    }
}

TEST(FaultyLink, AHeldFrameGoesRightAfterTheFrameThatOvertookIt) {
    using F = FaultModel::Fate;
    FaultSettings settings;
    settings.reorder_percent = 50;
    settings.delay = 1ms;
    settings.seed = seed_starting_with(settings, {F::kHoldBack, F::kPass, F::kPass});
    FaultyLink link(settings, 0);
    const Clock::time_point t0{};
    link.offer(frame(1), t0);  // held
    link.offer(frame(2), t0 + 10us);
    link.offer(frame(3), t0 + 20us);
    EXPECT_EQ(link.next_due(), t0 + 1010us);  // frame 2's time, before frame 1's limit
    EXPECT_TRUE(drain(link, t0 + 1009us).empty());
    EXPECT_EQ(drain(link, t0 + 1010us), (std::vector<uint8_t>{2, 1}));
    EXPECT_EQ(drain(link, t0 + 1020us), (std::vector<uint8_t>{3}));
}

TEST(FaultyLink, AHeldFrameNobodyOvertakesGoesAfterTheHoldLimit) {
    FaultSettings settings;
    settings.reorder_percent = 100;
    settings.delay = 1ms;
    FaultyLink link(settings, 0);
    const Clock::time_point t0{};
    link.offer(frame(1), t0);
    link.offer(frame(2), t0);
    EXPECT_EQ(link.next_due(), t0 + 1ms + FaultyLink::kMaxHold);
    EXPECT_TRUE(drain(link, t0 + 1ms + FaultyLink::kMaxHold - 1ns).empty());
    EXPECT_EQ(drain(link, t0 + 1ms + FaultyLink::kMaxHold), (std::vector<uint8_t>{1, 2}));
}

TEST(FaultyLink, LosesAndReordersButNeverDuplicatesOrInvents) {
    FaultSettings settings;
    settings.loss_percent = 10;
    settings.reorder_percent = 20;
    settings.seed = 5;
    FaultyLink link(settings, 1);
    const auto expected = fates(settings, 1, 250);
    Clock::time_point now{};
    std::vector<uint8_t> out;
    size_t lost = 0;
    for (size_t i = 0; i < 250; ++i) {
        const auto offer = link.offer(frame(static_cast<uint8_t>(i)), now);
        EXPECT_EQ(offer == FaultyLink::Offer::kLost, expected[i] == FaultModel::Fate::kLose) << i;
        lost += offer == FaultyLink::Offer::kLost;
        now += 10us;
        for (uint8_t tag : drain(link, now)) out.push_back(tag);
    }
    for (uint8_t tag : drain(link, now + FaultyLink::kMaxHold)) out.push_back(tag);
    EXPECT_EQ(link.queued(), 0u);
    EXPECT_EQ(out.size() + lost, 250u);
    std::vector<uint8_t> sorted = out;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());  // no duplicates
    EXPECT_FALSE(std::is_sorted(out.begin(), out.end()));                       // reordered
    // Nothing but the frames that were not lost.
    for (uint8_t tag : out) EXPECT_NE(expected[tag], FaultModel::Fate::kLose) << int{tag};
}

TEST(FaultyLink, ZeroDelayWithoutFaultsPassesAtOnce) {
    FaultSettings settings;
    settings.reorder_percent = 0.0001;  // active, but practically never reorders
    FaultyLink link(settings, 0);
    const Clock::time_point t0{};
    link.offer(frame(1), t0);
    EXPECT_EQ(drain(link, t0), (std::vector<uint8_t>{1}));
}

TEST(FaultyLink, DropsWhatDoesNotFitItsQueue) {
    FaultSettings settings;
    settings.delay = 1ms;
    FaultyLink link(settings, 0);
    const Clock::time_point t0{};
    const size_t size = 1 << 20;
    for (size_t i = 0; i < FaultyLink::kMaxQueuedBytes / size; ++i)
        EXPECT_EQ(link.offer(frame(1, size), t0), FaultyLink::Offer::kQueued);
    EXPECT_EQ(link.offer(frame(2, size), t0), FaultyLink::Offer::kOverflow);
    EXPECT_EQ(drain(link, t0 + 1ms).size(), FaultyLink::kMaxQueuedBytes / size);
    EXPECT_EQ(link.offer(frame(3, size), t0 + 1ms), FaultyLink::Offer::kQueued);  // room again
    link.clear();
    EXPECT_EQ(link.queued(), 0u);
    EXPECT_FALSE(link.next_due().has_value());
}

}  // namespace
}  // namespace kiln::vmm
