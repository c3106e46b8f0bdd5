// Kiln's image store: content-addressed blobs on disk, names in SQLite.
//
//   STATE/images/sha256/<hex>   blobs: kernels, root file systems (cpio), image manifests (JSON)
//   STATE/kiln.db               SQLite (WAL): table image_tags (name, tag) -> manifest digest
//
// An image is its manifest: a JSON object naming the kernel and rootfs blobs by digest and
// holding the run configuration (cmd, env, memory, labels). Its id is the manifest's digest, so
// two builds of the same inputs are the same image. Blobs are written to a temporary file, synced
// and renamed: a blob that exists is whole, and a crash leaves at most a stray temporary file.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "images/dockerfile.h"
#include "images/kraftfile.h"
#include "store/sqlite.h"

namespace kiln::images {

class StoreError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Image {
    std::string name, tag;
    std::string digest;       // "sha256:<hex>" of the manifest
    int64_t created_ns = 0;   // when this name:tag was last set
    nlohmann::json manifest;  // kernel, rootfs, cmd, env, memory_mb, labels, sizes
    // name:tag, or name@sha256:<hex> for an image pulled by digest (its tag is "@sha256:<hex>").
    std::string reference() const { return tag.rfind('@', 0) == 0 ? name + tag : name + ":" + tag; }
};

// "sha256:<hex>" of `bytes`.
std::string sha256_digest(const std::string& bytes);

// The memory an instance of an image gets unless it asks (from its rootfs's size), in MiB.
int64_t image_memory_mb(const nlohmann::json& manifest);

// "name[:tag]" split; the tag defaults to "latest". A registry's image (registry_reference.h) is
// named HOST[:PORT]/REPO, and by digest its tag is "@sha256:<hex>". Throws StoreError on a bad
// name or tag.
std::pair<std::string, std::string> parse_reference(const std::string& reference);

class ImageStore {
  public:
    // Opens (creating if needed) the store under `state_dir`. Throws StoreError.
    explicit ImageStore(const std::string& state_dir);
    ~ImageStore();
    ImageStore(const ImageStore&) = delete;
    ImageStore& operator=(const ImageStore&) = delete;

    // Builds the image a Kraftfile describes with the kernel at `kernel_path`, names it
    // `reference` (the Kraftfile's name:latest when empty), and returns it; `build_args` are a
    // Dockerfile rootfs's ARGs. Throws KraftfileError, DockerfileError, RootfsError or StoreError
    // naming what is wrong.
    Image build(const Kraftfile& kraftfile, const std::string& kernel_path, const std::string& reference = {},
                const std::map<std::string, std::string>& build_args = {});

    // An image built elsewhere (kiln build against a remote kilnd): its manifest's bytes and the
    // blobs it names that this store lacks, keyed by digest. Every digest is checked against its
    // bytes and every blob the manifest names must be here after; names it `reference`. Throws
    // StoreError naming what is missing or wrong; nothing is tagged then.
    Image import(const std::string& reference, const std::string& manifest,
                 const std::map<std::string, std::string>& blobs);
    // Whether a blob is here (so a pusher need not send it).
    bool has_blob(const std::string& digest) const;

    std::vector<Image> list();
    // By name[:tag], "sha256:<hex>" or a hex prefix of at least 6 digits of its digest.
    std::optional<Image> find(const std::string& reference);
    // Removes the name:tag (or every name of a digest); blobs no image uses any more go too.
    // Returns the references removed. Throws StoreError if there is no such image.
    std::vector<std::string> remove(const std::string& reference);

    // The file of a blob, for kiln-vmm to read.
    std::string blob_path(const std::string& digest) const;

    // How a registry's image that is not here gets here (kiln's pull, registry.h; the store
    // itself reaches no registry): a Dockerfile's FROM of one pulls it. Throws on failure.
    using Puller = std::function<void(ImageStore& store, const std::string& reference)>;
    void set_puller(Puller puller) { puller_ = std::move(puller); }

  private:
    std::string put_blob(const std::string& bytes);
    // The manifest's rootfs, with the cmd, env (and a Dockerfile's exposed, workdir,
    // image_labels) that go with it: built, checked against the cmd, archived.
    nlohmann::json build_rootfs(const Kraftfile& kraftfile, const std::map<std::string, std::string>& build_args);
    // A Dockerfile build's cache: its key, by content (its base images' digests too: a base not
    // here is pulled first), and the part built for it before (null when there is none, or its
    // archive is gone).
    std::string dockerfile_build_key(const Kraftfile& kraftfile, const std::map<std::string, std::string>& build_args);
    nlohmann::json remembered_rootfs(const std::string& key) const;
    // The image a FROM names: here, or pulled through the puller; nullopt if neither.
    std::optional<Image> base_image(const std::string& reference);
    BaseImage base(const std::string& reference);
    void remember_rootfs(const std::string& key, const nlohmann::json& part);
    Image tag(const std::string& name, const std::string& tag, const std::string& digest,
              const nlohmann::json& manifest);
    nlohmann::json read_manifest(const std::string& digest) const;
    void collect_garbage();

    std::string state_dir_, blob_dir_;
    std::unique_ptr<store::Database> db_;
    Puller puller_;
};

// The Kiln kernel images are built with and pulled container images run on: KILN_KERNEL, else
// next to the running executable's directory (build/bin/kiln and build/bin/kilnd find
// build/kernel/kiln.elf; an installed bin/ finds lib/kiln/kiln.elf), so a build tree works without
// an install step. Throws std::runtime_error naming where it looked.
std::string default_kernel_path();

}  // namespace kiln::images
