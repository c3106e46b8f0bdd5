// libFuzzer: what a registry hands kiln pull, none of which it may trust: image references (what
// a user types, also parsed back from the store), manifests and indexes, a container image's
// config, and its layer tarballs unpacked as an overlay would. The first byte chooses which; any
// outcome but the documented error or a result is a bug. A parsed reference must print back to
// itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "images/container_image.h"
#include "images/oci_manifest.h"
#include "images/registry_reference.h"

namespace {

void reference(const std::string& text) {
    try {
        const kiln::images::RegistryReference parsed = kiln::images::parse_registry_reference(text);
        if (kiln::images::parse_registry_reference(parsed.str()).str() != parsed.str()) std::abort();
    } catch (const kiln::images::RegistryError&) {
    }
}

void manifest(const std::string& text) {
    try {
        kiln::images::parse_oci_manifest(text);
    } catch (const kiln::images::RegistryError&) {
    }
    try {
        kiln::images::platform_manifest(text, "127.0.0.1:5000/fuzz:1");
    } catch (const kiln::images::RegistryError&) {
    }
}

void config(const std::string& text) {
    try {
        kiln::images::parse_container_config(text);
    } catch (const kiln::images::RootfsError&) {
    }
}

// Two layers from one input: a layer over another is where whiteouts and replacements act.
void layers(const std::string& bytes) {
    const size_t half = bytes.size() / 2;
    try {
        kiln::images::unpack_layers({bytes.substr(0, half), bytes.substr(half)}, {"lower", "upper"});
    } catch (const kiln::images::RootfsError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 4) {
        case 0: reference(rest); break;
        case 1: config(rest); break;
        case 2: manifest(rest); break;
        default: layers(rest); break;
    }
    return 0;
}
