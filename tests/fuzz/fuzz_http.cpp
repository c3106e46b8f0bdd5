// libFuzzer: the http handler's message framing on arbitrary streams, as requests and as
// responses, fed whole and in pieces; and the CLI's reader of kilnd's answers (cli/
// http_client.h) on the same bytes, whole and in pieces. Any crash, any claim to have used bytes
// it was not given, or a different answer for the same bytes in other pieces is a bug; a reader
// may refuse what it is given only with std::runtime_error.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "balancer/http_framing.h"
#include "http_client.h"

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

// The CLI's reading of `data` as an answer, given `step` bytes at a time: its status and body, or
// its refusal.
std::string read_as_answer(std::string_view data, size_t step) {
    const kiln::cli::Endpoint endpoint{.unix_socket = "fuzz"};
    std::string out;
    try {
        kiln::cli::read_answer(
            [&](char* buffer, size_t room) {
                const size_t n = std::min({room, step, data.size()});
                data.copy(buffer, n);
                data.remove_prefix(n);
                return n;
            },
            endpoint, [&](int status) { out = std::to_string(status) + ":"; },
            [&](const char* piece, size_t length) {
                out.append(piece, length);
                return true;
            });
    } catch (const std::runtime_error& refused) {
        return std::string("refused: ") + refused.what();
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
    const char* data = reinterpret_cast<const char*>(bytes);
    for (auto kind : {HttpFraming::Kind::kRequest, HttpFraming::Kind::kResponse}) {
        const auto whole = frame(kind, data, size, size + 1);
        const auto pieces = frame(kind, data, size, 3);
        if (whole != pieces) std::abort();
    }
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    if (read_as_answer(text, size + 1) != read_as_answer(text, 3)) std::abort();
    return 0;
}
