// An image's root file system as the Kiln kernel reads it: a cpio (newc) archive, made from a
// directory, a cpio archive or a tarball (plain, gzip, xz, zstd: whatever libarchive reads).
//
// The archive is reproducible: entries sorted by path, times zero, so the same files give the same
// bytes and the same content address in the image store. Owners come from the source where it
// states them on purpose (a tarball's or cpio archive's uid and gid, a container image layer's);
// a directory's files belong to root whoever owns them on the build host, so that one tree gives
// one image on every host.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kiln::images {

class RootfsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct RootfsEntry {
    std::string path;   // absolute inside the image ("/bin/server")
    unsigned mode = 0;  // type and permission bits (S_IFREG | 0755)
    std::string data;   // file contents, or a symbolic link's target
    uint32_t uid = 0;   // the owner, as the instance's stat reports it
    uint32_t gid = 0;
};

// Reads `source` into entries, sorted by path, with every parent directory present (a parent
// no entry listed belongs to root). Throws RootfsError naming the source and what is wrong with it.
std::vector<RootfsEntry> read_rootfs(const std::string& source);

// Entries by path as read_rootfs gives them: sorted, with every parent directory present (0755
// where the source did not list it).
std::vector<RootfsEntry> complete_entries(std::map<std::string, RootfsEntry> entries);

// A USER as Docker resolves it when a container starts: NAME|UID[:GROUP|GID] looked up in the
// image's /etc/passwd and /etc/group (`file` gives an entry by path, or null); "root" needs no
// line. Throws RootfsError ("USER WHO: no user 'NAME' in the image's /etc/passwd", ...).
std::pair<uint32_t, uint32_t> resolve_user(const std::string& who,
                                           const std::function<const RootfsEntry*(const std::string& path)>& file);

// A file's bytes, read into a string of its size. Throws RootfsError.
std::string read_file_bytes(const std::string& path);

// The entries as a cpio newc archive (with its TRAILER!!!), each with its owner.
std::string write_cpio(const std::vector<RootfsEntry>& entries);

// The entry at `path`, following symbolic links inside the image; nullptr if there is none.
const RootfsEntry* find_entry(const std::vector<RootfsEntry>& entries, const std::string& path);

}  // namespace kiln::images
