// References to images in OCI registries, as docker writes them:
//
//   HOST[:PORT]/REPO[:TAG]          the tag defaults to "latest"
//   HOST[:PORT]/REPO@sha256:<hex>   a manifest by its digest
//
// HOST is what tells a registry reference from a local image name: it has a '.' or a ':', or is
// "localhost" (docker's rule), so "web:v1" stays a local name. The local image store names a
// pulled image HOST[:PORT]/REPO with the tag TAG, or "@sha256:<hex>" for a digest.
#pragma once

#include <stdexcept>
#include <string>

namespace kiln::images {

class RegistryError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct RegistryReference {
    std::string host;        // "registry.example.com", "127.0.0.1:5000"
    std::string repository;  // "team/app"
    std::string tag;         // "v1"; empty when `digest` is set
    std::string digest;      // "sha256:<hex>", or empty

    // What the registry's manifest URL ends with: the tag or the digest.
    std::string target() const { return digest.empty() ? tag : digest; }
    // HOST/REPO: the image's name in the local store.
    std::string name() const { return host + "/" + repository; }
    // Its tag in the local store: TAG, or "@sha256:<hex>".
    std::string local_tag() const { return digest.empty() ? tag : "@" + digest; }
    // The whole reference, as the user writes it.
    std::string str() const { return digest.empty() ? name() + ":" + tag : name() + "@" + digest; }
};

// Whether `text` names an image in a registry (its first '/'-separated part is a host).
bool is_registry_reference(const std::string& text);

// Parses a registry reference. Throws RegistryError naming the part that is wrong.
RegistryReference parse_registry_reference(const std::string& text);

// Whether `name` is an image name the local store accepts for a registry's image: HOST[:PORT]/REPO.
bool valid_registry_name(const std::string& name);

// Whether `digest` is "sha256:" and 64 lower-case hex digits.
bool valid_digest(const std::string& digest);

}  // namespace kiln::images
