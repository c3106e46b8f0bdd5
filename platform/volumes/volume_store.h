// Volumes as kilnd keeps them: ext4 image files under STATE/volumes/<uuid>.ext4, one row each in
// the state database (the instances' SQLite), and their attachments to instances, in the order
// they were made (the order of an instance's block devices). A kilnd killed at any moment restarts
// with every volume: a file is made under a temporary name and renamed before its row is written,
// a row is deleted before its file, and files with no row are removed at start.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "store/sqlite.h"
#include "volumes/volume_spec.h"

namespace kiln::volumes {

struct Attachment {
    std::string volume;    // its uuid
    std::string instance;  // the instance's uuid
    std::string at;        // where the instance mounts it
    bool readonly = false;
};

struct Volume {
    std::string uuid, name;
    int64_t size_mb = 0;
    int64_t created_ns = 0;
    std::string file;  // the ext4 image on the host
    std::vector<Attachment> attachments;
};

// THE way a volume's file system is made (the features the Kiln kernel's ext4 supports): `file`
// created or truncated to `size_mb` MiB, then mke2fs -t ext4 with a 4 KiB block, a journal, and
// no metadata_csum, 64bit, dir_index, orphan_file, resize_inode, uninit_bg or huge_file, labelled
// `label`. Throws std::runtime_error with mke2fs's own message.
void make_ext4(const std::string& file, int64_t size_mb, const std::string& label);

// Copies `from` to `to` (created): a reflink (FICLONE) where the file system can, else the bytes.
// Throws std::runtime_error naming the file.
void copy_file(const std::string& from, const std::string& to);

class VolumeStore {
  public:
    // The tables in `db`, and STATE/volumes/ (files without a row there are removed).
    VolumeStore(store::Database& db, const std::string& state_dir);

    store::Database& db() { return db_; }
    std::string directory() const { return dir_; }

    // A new volume: its file made (make_ext4), then its row. Throws store::DatabaseError if the
    // name is taken (the caller checks first), std::runtime_error if mke2fs fails.
    Volume create(const std::string& name, int64_t size_mb);
    // A new volume holding a copy of `source`'s file.
    Volume clone(const Volume& source, const std::string& name);
    // Its row and its file (which must have no attachment).
    void remove(const Volume& volume);

    std::optional<Volume> find(const std::string& uuid_or_name);
    std::vector<Volume> list();  // oldest first

    void attach(const Attachment& attachment);  // throws store::DatabaseError on a duplicate
    void detach(const std::string& volume_uuid, const std::string& instance_uuid);
    void detach_instance(const std::string& instance_uuid);                             // the instance is deleted
    std::vector<Attachment> attachments_of_instance(const std::string& instance_uuid);  // device order
    // What the instance's tender and kernel are given (volume_spec.h), in device order.
    std::vector<VolumeMount> mounts_of(const std::string& instance_uuid);

  private:
    Volume insert(const std::string& name, int64_t size_mb, const std::string& uuid, const std::string& part);
    std::vector<Attachment> attachments_of_volume(const std::string& volume_uuid);
    store::Database& db_;
    std::string dir_;
};

}  // namespace kiln::volumes
