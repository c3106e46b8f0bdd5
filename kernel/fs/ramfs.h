// The in-memory file system behind `/`: the initrd's files, writable.
//
// A file unpacked from the initrd keeps pointing into the initrd (no copy at boot, no page
// touched until read); its first write copies it into memory of its own.
#pragma once

#include "fs/node.h"
#include "lib/string_class.h"
#include "lib/vector.h"

namespace kiln::fs {

class RamFile final : public Node {
  public:
    explicit RamFile(uint32_t permissions) : Node(Type::kRegular, permissions) {}
    // Content borrowed from memory that outlives the file (the initrd).
    void borrow(const uint8_t* data, size_t size);

    int64_t read(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    int64_t write(uint64_t offset, const IoBuffer& buffer, size_t size) override;
    uint64_t size() const override { return size_; }
    int64_t truncate(uint64_t size) override;
    // The bytes, for the ELF loader; valid until the next write.
    const uint8_t* data() const { return borrowed_ ? borrowed_ : owned_; }
    // True while the bytes are still the initrd's, which outlive every file and mapping.
    bool borrowed() const { return borrowed_ != nullptr; }
    const uint8_t* lasting_bytes() const override { return borrowed_; }

    ~RamFile() override;

  private:
    bool make_owned(size_t capacity);

    const uint8_t* borrowed_ = nullptr;
    uint8_t* owned_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

class RamDirectory final : public Node {
  public:
    explicit RamDirectory(uint32_t permissions) : Node(Type::kDirectory, permissions) {}
    RefPtr<Node> lookup(StringView name) override;
    int64_t add_entry(StringView name, RefPtr<Node> node) override;
    int64_t remove_entry(StringView name) override;
    bool entry(size_t index, DirEntry& out) override;
    size_t entry_count() const override { return entries_.size(); }
    int64_t create(StringView name, Type type, uint32_t permissions, StringView link_target, Owner owner,
                   RefPtr<Node>& out) override;

  private:
    struct Entry {
        String name;
        RefPtr<Node> node;
    };
    Vector<Entry> entries_;
};

class RamSymlink final : public Node {
  public:
    explicit RamSymlink(StringView target) : Node(Type::kSymlink, 0777), target_(target) {}
    StringView link_target() const override { return target_.view(); }
    uint64_t size() const override { return target_.size(); }

  private:
    String target_;
};

}  // namespace kiln::fs
