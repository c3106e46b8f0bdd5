// The virtual file system's objects: nodes (files, directories, symlinks, devices) and the
// buffers system calls read into and write from.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/ref_ptr.h"
#include "lib/string_view.h"

namespace kiln::fs {

// File types as st_mode spells them.
enum class Type : uint32_t {
    kRegular = 0100000,
    kDirectory = 0040000,
    kSymlink = 0120000,
    kCharDevice = 0020000,
    kFifo = 0010000,
    kSocket = 0140000,
};

// Where a read lands or a write comes from: the application's memory (checked, may fault) or the
// kernel's.
class IoBuffer {
  public:
    static IoBuffer user(uint64_t address) { return IoBuffer(address, true); }
    static IoBuffer kernel(void* address) { return IoBuffer(reinterpret_cast<uint64_t>(address), false); }
    static IoBuffer kernel(const void* address) { return IoBuffer(reinterpret_cast<uint64_t>(address), false); }

    // 0 or -EFAULT.
    int copy_out(size_t offset, const void* src, size_t size) const;  // into the buffer
    int copy_in(size_t offset, void* dst, size_t size) const;         // from the buffer
    IoBuffer advanced(size_t offset) const { return IoBuffer(address_ + offset, user_); }

  private:
    IoBuffer(uint64_t address, bool user) : address_(address), user_(user) {}
    uint64_t address_;
    bool user_;
};

// Who a new node belongs to: the creating process's file-system uid and gid.
struct Owner {
    uint32_t uid = 0;
    uint32_t gid = 0;
};

struct DirEntry {
    StringView name;
    uint64_t ino;
    Type type;
};

class Node : public RefCounted {
  public:
    Node(Type type, uint32_t permissions);

    Type type() const { return type_; }
    uint32_t mode() const { return static_cast<uint32_t>(type_) | permissions_; }
    virtual void set_permissions(uint32_t p) { permissions_ = p & 07777; }
    uint64_t ino() const { return ino_; }
    // The owner (st_uid, st_gid). A volume's node writes a change to its inode.
    uint32_t uid() const { return owner_.uid; }
    uint32_t gid() const { return owner_.gid; }
    virtual int64_t set_owner(Owner owner) {
        owner_ = owner;
        return 0;
    }
    virtual uint32_t rdev() const { return 0; }
    uint64_t mtime_ns = 0;

    // Regular files and devices. Offsets matter only where the node has a position.
    virtual int64_t read(uint64_t offset, const IoBuffer& buffer, size_t size);
    virtual int64_t write(uint64_t offset, const IoBuffer& buffer, size_t size);
    virtual uint64_t size() const { return 0; }
    virtual int64_t truncate(uint64_t size);
    virtual bool seekable() const { return type_ == Type::kRegular || type_ == Type::kDirectory; }
    virtual int64_t ioctl(uint64_t request, uint64_t argument);
    // Bytes that outlive the node and every mapping of it (a file still the initrd's): a private
    // mapping takes its pages from them on first touch. Null: a mapping copies the file.
    virtual const uint8_t* lasting_bytes() const { return nullptr; }

    // Directories.
    virtual RefPtr<Node> lookup(StringView name);
    virtual int64_t add_entry(StringView name, RefPtr<Node> node);
    virtual int64_t remove_entry(StringView name);
    // The entry at `index` (".", ".." not included); false past the end.
    virtual bool entry(size_t index, DirEntry& out);
    virtual size_t entry_count() const { return 0; }
    RefPtr<Node> parent;  // directories: for ".."

    // Directories: a new node of `type` (regular, directory or symlink to `link_target`) named
    // `name` here, of this directory's file system, owned by `owner`. EEXIST if the name is taken.
    virtual int64_t create(StringView name, Type type, uint32_t permissions, StringView link_target, Owner owner,
                           RefPtr<Node>& out);
    // Directories: moves entry `from` to `to` in `to_dir`, replacing what `to` named (the caller
    // has checked that is allowed). Both directories are of one file system.
    virtual int64_t rename(StringView from, const RefPtr<Node>& to_dir, StringView to);

    // The file system the node is of (null: the memory file system); a hard link or a rename
    // from one to another is EXDEV.
    virtual const void* file_system() const { return nullptr; }
    // Makes what was written to the node durable (fsync); a volume's node commits its journal.
    virtual int64_t sync() { return 0; }

    // Symlinks.
    virtual StringView link_target() const { return {}; }

  private:
    Type type_;
    uint32_t permissions_;
    uint64_t ino_;
    Owner owner_;
};

}  // namespace kiln::fs
