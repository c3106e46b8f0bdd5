// Kiln images in OCI registries (the distribution API: /v2/<repo>/manifests, /v2/<repo>/blobs).
//
// A Kiln image travels as an OCI image manifest (docs/registries.md): its config blob is the Kiln
// manifest itself (the image store's JSON, whose digest is the image's id), and its layers are the
// blobs that manifest names, the kernel and the root file system's cpio. A pulled image is thus
// byte for byte the image that was pushed, with the same id, stored as a local build stores it.
//
// HTTP goes through libcurl, loaded when a registry is first used (dlopen), not at kiln's start:
// libcurl and the two dozen libraries it needs would cost every kiln command their loading, and
// kiln links OpenSSL statically, which a libcurl linked in must not share symbols with.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "images/image_store.h"
#include "images/oci_manifest.h"
#include "images/registry_reference.h"

namespace kiln::images {

struct Credentials {
    std::string username, password;
};

struct RegistryOptions {
    std::string ca_file;                               // a PEM CA trusted besides the system's
    std::vector<std::string> insecure;                 // HOST[:PORT]s reached over plain HTTP
    std::optional<Credentials> credentials;            // for the registry in use
    std::function<void(const std::string&)> progress;  // one line about a blob's transfer
    // A transfer that moves no byte for this long fails: a stall, not a size, bounds a request
    // (a large layer may take minutes).
    long stall_timeout_s = 60;
    std::string kernel_path;  // the Kiln kernel a pulled container image runs on
};

// kiln login's credentials: STATE/registries.json, mode 0600, by HOST[:PORT].
std::optional<Credentials> load_credentials(const std::string& state_dir, const std::string& host);
// What kiln and kilnd both know of registries without flags: the environment's KILN_REGISTRY_CA
// and KILN_INSECURE_REGISTRIES (comma-separated HOST:PORTs), and the credentials kept under
// `state_dir` for `host`.
RegistryOptions registry_options_from_environment(const std::string& state_dir, const std::string& host);
void save_credentials(const std::string& state_dir, const std::string& host, const Credentials& credentials);
// kiln logout: false if there were none for `host`.
bool remove_credentials(const std::string& state_dir, const std::string& host);

// Whether HOST[:PORT] accepts `options.credentials` (GET /v2/). Throws RegistryError naming why not.
void check_login(const std::string& host, const RegistryOptions& options);

// Pushes a stored image to `reference`; blobs the registry has are not sent. Returns the pushed
// manifest's digest. Throws RegistryError or StoreError naming what failed.
std::string push_image(const ImageStore& store, const Image& image, const RegistryReference& reference,
                       const RegistryOptions& options);

struct PullResult {
    Image image;
    std::string manifest_digest;  // the registry's manifest
    uint64_t downloaded = 0;      // bytes of blobs fetched (0: all were here)
};
// Pulls `reference` into the store, named reference.str(). Every manifest and blob is checked
// against its digest; on any mismatch nothing is stored. A container image (OCI or Docker's, or
// an index's linux/amd64 one) becomes a Kiln image: its layers unpacked into the rootfs
// (container_image.h), its config's command and environment, the kernel at
// options.kernel_path. Throws RegistryError, RootfsError or StoreError.
PullResult pull_image(ImageStore& store, const RegistryReference& reference, const RegistryOptions& options);

}  // namespace kiln::images
