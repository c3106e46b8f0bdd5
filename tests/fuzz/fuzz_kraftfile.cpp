// libFuzzer: the Kraftfile parser (yaml-cpp underneath) on arbitrary text. Any outcome but a
// KraftfileError or a parsed Kraftfile is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "images/kraftfile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        kiln::images::parse_kraftfile(text, "/nonexistent/fuzz/Kraftfile");
    } catch (const kiln::images::KraftfileError&) {
    }
    return 0;
}
