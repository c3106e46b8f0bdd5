// A file, directory or symlink of an ext4 volume, as the VFS sees it. One node per inode is in
// memory at a time (FileSystem::node); the inode's fields live in `inode_` and reach the inode
// table (a metadata block, journaled) at every change. An inode whose last name goes is freed
// when its last user lets go of the node, as Linux does for an open, unlinked file.
#pragma once

#include "fs/ext4/file_system.h"
#include "fs/ext4/format.h"
#include "fs/node.h"
#include "lib/string_class.h"

namespace kiln::fs::ext4 {

class Ext4Node final : public Node {
  public:
    static RefPtr<Ext4Node> make(FileSystem& fs, uint32_t ino, const Inode& inode);
    ~Ext4Node() override;

    uint32_t inode_number() const { return ino_; }

    // Files.
    int64_t read(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    int64_t write(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    uint64_t size() const override;
    int64_t truncate(uint64_t size) override;
    void set_permissions(uint32_t permissions) override;
    int64_t set_owner(Owner owner) override;
    const void* file_system() const override { return &fs_; }
    int64_t sync() override { return fs_.sync(); }

    // Directories (directory.cpp): linear, as without dir_index.
    RefPtr<Node> lookup(StringView name) override;
    int64_t add_entry(StringView name, RefPtr<Node> node) override;
    int64_t remove_entry(StringView name) override;
    bool entry(size_t index, DirEntry& out) override;
    size_t entry_count() const override;
    int64_t create(StringView name, Type type, uint32_t permissions, StringView link_target, Owner owner,
                   RefPtr<Node>& out) override;
    int64_t rename(StringView from, const RefPtr<Node>& to_dir, StringView to) override;

    StringView link_target() const override { return target_.view(); }

  private:
    Ext4Node(FileSystem& fs, uint32_t ino, const Inode& inode, Type type);
    void set_size(uint64_t size);
    int64_t store();
    // Blocks for file block `logical` on, up to `count` in a row, allocated and mapped.
    // `may_commit`: the operation is at a point a commit may cut (a file's data written so far).
    int64_t allocate(uint32_t logical, uint32_t count, uint64_t goal, uint64_t& first, uint32_t& got,
                     bool may_commit = false);
    int64_t read_symlink();
    void release();

    // Directory internals (directory.cpp).
    struct Slot {
        uint64_t block = 0;              // the directory block holding the entry
        uint32_t offset = 0;             // the entry's offset in it
        uint32_t previous = UINT32_MAX;  // the entry before it in that block
        uint32_t ino = 0;
        uint8_t file_type = 0;
    };
    template <typename F>
    int64_t for_each_entry(F visit) const;
    bool find(StringView name, Slot& out) const;
    int64_t insert(StringView name, uint32_t ino, uint8_t file_type);
    int64_t erase(const Slot& slot);
    int64_t set_dotdot(uint32_t parent_ino);
    int64_t make_directory_block(uint32_t parent_ino);
    void adjust_links(int delta);

    FileSystem& fs_;
    uint32_t ino_;
    Inode inode_;
    String target_;              // a symlink's
    mutable String entry_name_;  // the name entry() last returned
};

uint8_t file_type_of(Type type);

}  // namespace kiln::fs::ext4
