#include "fs/vfs.h"

#include "core/errno.h"
#include "fs/ramfs.h"
#include "lib/string.h"

namespace kiln::fs {
namespace {

constinit Node* root_node = nullptr;
constexpr int kMaxSymlinks = 40;

bool only_slashes(StringView s) {
    for (char c : s)
        if (c != '/') return false;
    return true;
}

// The walk itself. `stop_before_last` leaves the last component unresolved (for creation).
int64_t walk(StringView path, const RefPtr<Node>& base, bool follow, bool stop_before_last, RefPtr<Node>& out,
             StringView* last) {
    if (path.empty()) return -ENOENT;
    if (path.size() >= kPathMax) return -ENAMETOOLONG;
    // Symlink expansion rewrites the remaining path, so it is kept in a buffer of our own.
    char buffer[kPathMax];
    memcpy(buffer, path.data(), path.size());
    StringView rest(buffer, path.size());
    RefPtr<Node> dir = path[0] == '/' ? root() : base;
    int links = 0;
    for (;;) {
        StringView component = next_component(rest);
        if (component.empty()) {  // the path ended (possibly with slashes)
            if (last) *last = StringView(".", 1);
            out = dir;
            return 0;
        }
        const bool is_last = only_slashes(rest);
        if (dir->type() != Type::kDirectory) return -ENOTDIR;
        if (is_last && stop_before_last) {
            if (last) *last = component;
            out = dir;
            return 0;
        }
        RefPtr<Node> next;
        if (component == ".") {
            next = dir;
        } else if (component == "..") {
            next = dir->parent ? dir->parent : dir;
        } else {
            next = dir->lookup(component);
            if (!next) return -ENOENT;
        }
        if (next->type() == Type::kSymlink && (!is_last || follow)) {
            if (++links > kMaxSymlinks) return -ELOOP;
            StringView target = next->link_target();
            if (target.size() + rest.size() >= kPathMax) return -ENAMETOOLONG;
            // New remaining path: the target, then what was left. `rest` lives in `buffer` too,
            // so move it first.
            memmove(buffer + target.size(), rest.data(), rest.size());
            memcpy(buffer, target.data(), target.size());
            rest = StringView(buffer, target.size() + rest.size());
            if (!target.empty() && target[0] == '/') dir = root();
            continue;
        }
        if (!rest.empty() && rest[0] == '/' && is_last && next->type() != Type::kDirectory) return -ENOTDIR;
        dir = next;
    }
}

}  // namespace

StringView next_component(StringView& rest) {
    size_t i = 0;
    while (i < rest.size() && rest[i] == '/') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != '/') ++j;
    StringView component = rest.substr(i, j - i);
    rest = rest.substr(j);
    return component;
}

void init() {
    auto* root_dir = new RamDirectory(0755);
    root_dir->ref();  // the root lives forever
    root_node = root_dir;
}

RefPtr<Node> root() { return RefPtr<Node>(root_node); }

int64_t resolve(StringView path, const RefPtr<Node>& base, bool follow, RefPtr<Node>& out) {
    return walk(path, base, follow, false, out, nullptr);
}

int64_t resolve_parent(StringView path, const RefPtr<Node>& base, RefPtr<Node>& parent, StringView& name) {
    StringView last;
    int64_t r = walk(path, base, true, true, parent, &last);
    if (r < 0) return r;
    if (last == "." || last == "..") return -EEXIST;
    // `last` points into walk's buffer; find the same component in the caller's path instead.
    size_t end = path.size();
    while (end > 0 && path[end - 1] == '/') --end;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') --start;
    name = path.substr(start, end - start);
    if (name.size() > 255) return -ENAMETOOLONG;
    return 0;
}

int64_t directory_path(const RefPtr<Node>& dir, char* buffer) {
    // Built backwards from the end of the buffer: each level's name, found in its parent.
    size_t at = kPathMax;
    RefPtr<Node> node = dir;
    while (node != root()) {
        RefPtr<Node> parent = node->parent;
        if (!parent || parent == node) return -ENOENT;
        DirEntry entry;
        bool found = false;
        for (size_t i = 0; !found && parent->entry(i, entry); ++i) found = entry.ino == node->ino();
        if (!found) return -ENOENT;
        if (entry.name.size() + 1 > at) return -ENAMETOOLONG;
        at -= entry.name.size();
        memcpy(buffer + at, entry.name.data(), entry.name.size());
        buffer[--at] = '/';
        node = parent;
    }
    if (at == kPathMax) buffer[--at] = '/';
    const size_t length = kPathMax - at;
    memmove(buffer, buffer + at, length);
    return static_cast<int64_t>(length);
}

int64_t make_directories(StringView path, RefPtr<Node>& out) {
    RefPtr<Node> dir = root();
    StringView rest = path;
    for (;;) {
        StringView component = next_component(rest);
        if (component.empty()) break;
        if (component == ".") continue;
        if (component == "..") return -EINVAL;
        RefPtr<Node> next = dir->lookup(component);
        if (!next) {
            next = RefPtr<Node>(new RamDirectory(0755));
            int64_t r = dir->add_entry(component, next);
            if (r < 0) return r;
        } else if (next->type() != Type::kDirectory) {
            return -ENOTDIR;
        }
        dir = next;
    }
    out = dir;
    return 0;
}

}  // namespace kiln::fs
