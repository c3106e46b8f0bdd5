// OCI image manifests (the image spec's application/vnd.oci.image.manifest.v1+json, and Docker's
// v2 schema 2, which has the same shape): a Kiln image's, and what a registry's says. Apart from
// the registry client so that the unit tests and a fuzzer reach the parser without libcurl.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/image_store.h"
#include "images/registry_reference.h"

namespace kiln::images {

// A Kiln image's media types (docs/registries.md).
inline constexpr const char* kOciManifestType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kKilnConfigType = "application/vnd.kiln.image.config.v1+json";
inline constexpr const char* kKilnKernelType = "application/vnd.kiln.kernel.v1";
inline constexpr const char* kKilnRootfsType = "application/vnd.kiln.rootfs.cpio.v1";
// Those of the container images kiln pulls.
inline constexpr const char* kDockerManifestType = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kOciIndexType = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kDockerListType = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kOciConfigType = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kDockerConfigType = "application/vnd.docker.container.image.v1+json";

struct Descriptor {
    std::string media_type, digest, title;  // title: the annotation org.opencontainers.image.title
    uint64_t size = 0;
};
struct OciManifest {
    std::string media_type;  // empty if the manifest does not say
    Descriptor config;
    std::vector<Descriptor> layers;
};

// The OCI manifest a Kiln image is pushed as: `kiln_manifest` (the bytes of the image's own
// manifest) its config, the kernel and rootfs its layers. The same image makes the same bytes.
std::string oci_manifest_for(const Image& image, const std::string& kiln_manifest);

// What a manifest says. An index parses with its media type and nothing else. Throws
// RegistryError naming what is missing or malformed.
OciManifest parse_oci_manifest(const std::string& text);

// The digest of an index's linux/amd64 manifest. Throws RegistryError naming `reference` if it
// has none.
std::string platform_manifest(const std::string& text, const std::string& reference);

}  // namespace kiln::images
