// libFuzzer: kilnd's request parsers on arbitrary bodies. Any outcome but a parsed request or an
// ApiError (a 4xx answer) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "api/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string body(reinterpret_cast<const char*>(data), size);
    try {
        kiln::api::parse_create(body);
    } catch (const kiln::api::ApiError&) {
    }
    try {
        kiln::api::parse_service(body);
    } catch (const kiln::api::ApiError&) {
    }
    try {
        kiln::api::parse_stop(body);
    } catch (const kiln::api::ApiError&) {
    }
    try {
        for (const auto& item : kiln::api::parse_batch(body)) kiln::api::parse_stop_fields(item.fields);
    } catch (const kiln::api::ApiError&) {
    }
    return 0;
}
