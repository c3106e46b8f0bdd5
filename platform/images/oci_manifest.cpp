#include "images/oci_manifest.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace kiln::images {

namespace {

using nlohmann::json;

// j[key] if it is a string, else "" (json::value would throw on another type).
std::string string_at(const json& j, const char* key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

Descriptor parse_descriptor(const json& j, const std::string& where) {
    if (!j.is_object()) throw RegistryError("manifest: " + where + " is not an object");
    Descriptor d;
    if (!j.contains("mediaType") || !j["mediaType"].is_string())
        throw RegistryError("manifest: " + where + " has no mediaType");
    d.media_type = j["mediaType"];
    if (!j.contains("digest") || !j["digest"].is_string() || !valid_digest(j["digest"]))
        throw RegistryError("manifest: " + where + " has no sha256 digest");
    d.digest = j["digest"];
    if (!j.contains("size") || !j["size"].is_number_unsigned())
        throw RegistryError("manifest: " + where + " has no size");
    d.size = j["size"];
    if (j.contains("annotations") && j["annotations"].is_object() &&
        j["annotations"].contains("org.opencontainers.image.title") &&
        j["annotations"]["org.opencontainers.image.title"].is_string())
        d.title = j["annotations"]["org.opencontainers.image.title"];
    return d;
}

}  // namespace

std::string oci_manifest_for(const Image& image, const std::string& kiln_manifest) {
    json layers = json::array();
    for (const auto& [part, type] : {std::pair{"kernel", kKilnKernelType}, std::pair{"rootfs", kKilnRootfsType}})
        if (image.manifest.contains(part))
            layers.push_back({{"mediaType", type},
                              {"digest", image.manifest[part]["digest"]},
                              {"size", image.manifest[part]["size"]},
                              {"annotations", {{"org.opencontainers.image.title", part}}}});
    const json manifest = {
        {"schemaVersion", 2},
        {"mediaType", kOciManifestType},
        {"config", {{"mediaType", kKilnConfigType}, {"digest", image.digest}, {"size", kiln_manifest.size()}}},
        {"layers", layers}};
    return manifest.dump();
}

OciManifest parse_oci_manifest(const std::string& text) {
    const json j = json::parse(text, nullptr, false);
    if (!j.is_object()) throw RegistryError("manifest: not a JSON object");
    if (!j.contains("schemaVersion") || j["schemaVersion"] != 2)
        throw RegistryError("manifest: schemaVersion is not 2");
    OciManifest manifest;
    if (j.contains("mediaType")) {
        if (!j["mediaType"].is_string()) throw RegistryError("manifest: mediaType is not a string");
        manifest.media_type = j["mediaType"];
    }
    if (manifest.media_type.empty() && j.contains("manifests"))
        manifest.media_type = kOciIndexType;  // the media type is optional, and an index has manifests
    if (manifest.media_type == kOciIndexType || manifest.media_type == kDockerListType)
        return manifest;  // an index names manifests, not layers
    if (!manifest.media_type.empty() && manifest.media_type != kOciManifestType &&
        manifest.media_type != kDockerManifestType)
        throw RegistryError("manifest: unknown mediaType " + manifest.media_type);
    if (!j.contains("config")) throw RegistryError("manifest: no config");
    manifest.config = parse_descriptor(j["config"], "config");
    if (!j.contains("layers") || !j["layers"].is_array()) throw RegistryError("manifest: no layers array");
    for (size_t i = 0; i < j["layers"].size(); ++i)
        manifest.layers.push_back(parse_descriptor(j["layers"][i], "layers[" + std::to_string(i) + "]"));
    return manifest;
}

std::string platform_manifest(const std::string& text, const std::string& reference) {
    const json index = json::parse(text, nullptr, false);
    if (index.is_object() && index.contains("manifests") && index["manifests"].is_array())
        for (const auto& m : index["manifests"]) {
            if (!m.is_object() || !m.contains("platform") || !m["platform"].is_object()) continue;
            const json& p = m["platform"];
            if (string_at(p, "os") == "linux" && string_at(p, "architecture") == "amd64" &&
                valid_digest(string_at(m, "digest")))
                return m["digest"];
        }
    throw RegistryError(reference + ": its index has no linux/amd64 image");
}

}  // namespace kiln::images
