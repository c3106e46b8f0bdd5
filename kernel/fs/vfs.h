// The file system tree and path resolution.
#pragma once

#include "fs/node.h"
#include "lib/string_view.h"

namespace kiln::fs {

inline constexpr size_t kPathMax = 4096;

void init();
RefPtr<Node> root();

// Splits off the next component of `rest`, skipping slashes ("" at the end).
StringView next_component(StringView& rest);

// Resolves `path` from `base` (used for relative paths). `follow`: follow a final symlink.
// Returns 0 or a negative errno (ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG).
int64_t resolve(StringView path, const RefPtr<Node>& base, bool follow, RefPtr<Node>& out);

// Resolves all but the last component of `path`: the directory an entry would be made in, and
// the entry's name (a view into `path`). "/" and paths ending in "." or ".." are EEXIST/EINVAL.
int64_t resolve_parent(StringView path, const RefPtr<Node>& base, RefPtr<Node>& parent, StringView& name);

// The absolute path of directory `dir`, found through its parents' entries, into `buffer`
// (kPathMax bytes). Returns its length, or a negative errno (ENOENT: no longer in the tree).
int64_t directory_path(const RefPtr<Node>& dir, char* buffer);

// Creates every missing directory of `path` (absolute); used to unpack the initrd.
int64_t make_directories(StringView path, RefPtr<Node>& out);

}  // namespace kiln::fs
