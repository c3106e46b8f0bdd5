// libFuzzer: the http handler's message framing on arbitrary streams, as requests and as
// responses, fed whole and in pieces. Any crash, any claim to have used bytes it was not given,
// or a different answer for the same bytes in other pieces is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "balancer/http_framing.h"

using kiln::balancer::HttpFraming;

namespace {

// How many bytes the first message takes, and whether it ended, feeding `step` at a time.
std::pair<size_t, int> frame(HttpFraming::Kind kind, const char* data, size_t size, size_t step) {
    HttpFraming f(kind);
    size_t used = 0;
    while (used < size && !f.done() && !f.failed()) {
        const size_t n = std::min(step, size - used);
        const size_t took = f.feed(data + used, n);
        if (took > n) std::abort();
        used += took;
        if (took < n) break;
    }
    return {used, f.done() ? 1 : f.failed() ? 2 : 0};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    const char* data = reinterpret_cast<const char*>(bytes);
    for (auto kind : {HttpFraming::Kind::kRequest, HttpFraming::Kind::kResponse}) {
        const auto whole = frame(kind, data, size, size + 1);
        const auto pieces = frame(kind, data, size, 3);
        if (whole != pieces) std::abort();
    }
    return 0;
}
