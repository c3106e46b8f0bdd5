#include "net/fault_model.h"

#include <cstdio>

namespace kiln::vmm {

namespace {

// splitmix64's output function: a good 64-bit mix, enough for loss decisions.
uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A probability in percent as a threshold on a uniform 64-bit number.
uint64_t threshold(double percent, bool& always) {
    constexpr double kTwo64 = 18446744073709551616.0;
    const double scaled = percent / 100.0 * kTwo64;
    always = scaled >= kTwo64;
    return always || scaled <= 0 ? 0 : static_cast<uint64_t>(scaled);
}

std::string format_number(double value) {
    char text[32];
    std::snprintf(text, sizeof(text), "%g", value);
    return text;
}

}  // namespace

std::string FaultSettings::describe() const {
    const double delay_ms = static_cast<double>(delay.count()) / 1e6;
    return "loss=" + format_number(loss_percent) + "% reorder=" + format_number(reorder_percent) +
           "% delay=" + format_number(delay_ms) + "ms seed=" + std::to_string(seed);
}

FaultModel::FaultModel(const FaultSettings& settings, uint64_t stream) : state_(mix(settings.seed ^ mix(stream + 1))) {
    lose_below_ = threshold(settings.loss_percent, always_lose_);
    hold_below_ = threshold(settings.reorder_percent, always_hold_);
}

uint64_t FaultModel::random() {
    state_ += 0x9e3779b97f4a7c15ull;
    return mix(state_);
}

FaultModel::Fate FaultModel::next() {
    // Two draws for every frame whatever the outcome, so that one setting does not shift the
    // decisions another makes: the same seed with reorder added loses the same frames.
    const bool lose = always_lose_ || random() < lose_below_;
    const bool hold = always_hold_ || random() < hold_below_;
    if (lose) return Fate::kLose;
    return hold ? Fate::kHoldBack : Fate::kPass;
}

FaultyLink::FaultyLink(const FaultSettings& settings, uint64_t stream)
    : model_(settings, stream), delay_(settings.delay) {}

FaultyLink::Offer FaultyLink::offer(Frame frame, Clock::time_point now) {
    const FaultModel::Fate fate = model_.next();
    if (fate == FaultModel::Fate::kLose) return Offer::kLost;
    if (queued_bytes_ + frame.size() > kMaxQueuedBytes) return Offer::kOverflow;
    queued_bytes_ += frame.size();
    const uint64_t sequence = next_sequence_++;
    if (fate == FaultModel::Fate::kHoldBack)
        held_.push_back({sequence, now + delay_ + kMaxHold, std::move(frame)});
    else
        passing_.push_back({sequence, now + delay_, std::move(frame)});
    return Offer::kQueued;
}

FaultyLink::Frame FaultyLink::take(std::deque<Entry>& queue) {
    Frame frame = std::move(queue.front().frame);
    queue.pop_front();
    queued_bytes_ -= frame.size();
    return frame;
}

std::optional<FaultyLink::Frame> FaultyLink::pop_due(Clock::time_point now) {
    // A held frame goes as soon as a frame that came after it has gone (it was overtaken), or
    // when it has waited long enough.
    if (!held_.empty() && (held_.front().sequence < released_up_to_ || held_.front().due <= now)) return take(held_);
    if (!passing_.empty() && passing_.front().due <= now) {
        released_up_to_ = passing_.front().sequence + 1;
        return take(passing_);
    }
    return std::nullopt;
}

std::optional<FaultyLink::Clock::time_point> FaultyLink::next_due() const {
    std::optional<Clock::time_point> due;
    if (!held_.empty()) due = held_.front().due;
    if (!passing_.empty() && (!due || passing_.front().due < *due)) due = passing_.front().due;
    return due;
}

void FaultyLink::clear() {
    passing_.clear();
    held_.clear();
    queued_bytes_ = 0;
}

}  // namespace kiln::vmm
