#include "fs/ext4/journal.h"

#include "core/errno.h"
#include "fs/ext4/extent_tree.h"
#include "lib/string.h"
#include "mm/heap.h"

namespace kiln::fs::ext4 {
namespace {

// Tags as this journal's features spell them: a 32-bit block number, 16 bits of nothing, flags.
struct Tag {
    uint32_t block;
    uint16_t checksum;
    uint16_t flags;
};
constexpr size_t kTagSize = sizeof(Tag);
constexpr size_t kUuidSize = 16;

JournalHeader header(uint32_t type, uint32_t sequence) {
    return {to_be32(kJournalMagic), to_be32(type), to_be32(sequence)};
}

bool is_header(const uint8_t* block, uint32_t type, uint32_t sequence) {
    JournalHeader h;
    memcpy(&h, block, sizeof(h));
    return from_be32(h.magic) == kJournalMagic && from_be32(h.blocktype) == type && from_be32(h.sequence) == sequence;
}

// A heap block buffer that frees itself.
class BlockBuffer {
  public:
    explicit BlockBuffer(uint32_t size) : data_(static_cast<uint8_t*>(heap::allocate(size))) {}
    ~BlockBuffer() { heap::free(data_); }
    BlockBuffer(const BlockBuffer&) = delete;
    BlockBuffer& operator=(const BlockBuffer&) = delete;
    uint8_t* get() const { return data_; }

  private:
    uint8_t* data_;
};

}  // namespace

Journal::~Journal() { heap::free(superblock_); }

uint64_t Journal::physical(uint32_t logical) const {
    for (const Run& r : runs_)
        if (logical >= r.logical && logical - r.logical < r.length) return r.physical + (logical - r.logical);
    return 0;
}

int64_t Journal::read_log(uint32_t logical, uint8_t* block) {
    const uint64_t p = physical(logical);
    if (p == 0) return -EUCLEAN;
    return cache_.read_blocks(p, block, 1);
}

int64_t Journal::write_log(uint32_t logical, const uint8_t* block) {
    const uint64_t p = physical(logical);
    if (p == 0) return -EUCLEAN;
    return cache_.write_blocks(p, block, 1);
}

uint32_t Journal::tags_per_descriptor() const {
    // The header, the first tag with the UUID after it, the others marked kTagSameUuid.
    return static_cast<uint32_t>((cache_.block_size() - sizeof(JournalHeader) - kUuidSize) / kTagSize);
}

int64_t Journal::open(const Inode& inode, uint32_t& replayed, const char*& error) {
    error = "the journal inode's extents are damaged";
    auto collect = [](void* context, uint32_t logical, uint64_t physical, uint32_t length) {
        return static_cast<Vector<Run>*>(context)->push_back({logical, physical, length});
    };
    if (int64_t r = for_each_extent(cache_, inode, collect, &runs_); r < 0) return r;
    const uint32_t bs = cache_.block_size();
    superblock_ = static_cast<uint8_t*>(heap::allocate(bs));
    if (!superblock_) return -ENOMEM;
    error = "the journal superblock cannot be read";
    if (int64_t r = read_log(0, superblock_); r < 0) return r;
    JournalSuperblock jsb;
    memcpy(&jsb, superblock_, sizeof(jsb));
    error = "the journal superblock is not jbd2's (version 2)";
    if (from_be32(jsb.header.magic) != kJournalMagic || from_be32(jsb.header.blocktype) != kJournalSuperblockV2)
        return -EUCLEAN;
    error = "the journal's block size is not the file system's";
    if (from_be32(jsb.blocksize) != bs) return -EUCLEAN;
    error = "the journal has features this kernel does not support (checksums, 64-bit, fast commits)";
    const uint32_t unsupported = kJournalIncompat64bit | kJournalIncompatCsumV2 | kJournalIncompatCsumV3 |
                                 kJournalIncompatAsyncCommit | kJournalIncompatFastCommit;
    if (from_be32(jsb.feature_incompat) & unsupported) return -EUCLEAN;
    first_ = from_be32(jsb.first);
    length_ = from_be32(jsb.maxlen);
    sequence_ = from_be32(jsb.sequence);
    memcpy(uuid_, jsb.uuid, sizeof(uuid_));
    error = "the journal's extents do not cover its length";
    if (first_ == 0 || first_ >= length_ || physical(length_ - 1) == 0) return -EUCLEAN;
    // One transaction: its descriptors, its blocks and the commit block fit the log.
    const uint32_t log = length_ - first_;
    capacity_ = (log - 1) * tags_per_descriptor() / (tags_per_descriptor() + 1);
    if (capacity_ > 4) capacity_ -= 2;
    replayed = 0;
    if (from_be32(jsb.start) == 0) return 0;
    if (cache_.device().read_only()) {
        error =
            "the volume was not unmounted cleanly and its journal cannot be replayed on a read-only device "
            "(attach it read-write once, or run e2fsck -fy on it)";
        return -EROFS;
    }
    return replay(replayed, error);
}

// jbd2's recovery: from s_start, transactions of consecutive sequence numbers, each a run of
// descriptor (and revoke) blocks and the blocks they describe, ended by a commit block. Only
// committed transactions are written home; a block revoked by transaction R is not replayed
// from any transaction up to R.
int64_t Journal::replay(uint32_t& replayed, const char*& error) {
    const uint32_t bs = cache_.block_size();
    BlockBuffer block(bs), data(bs);
    if (!block.get() || !data.get()) return -ENOMEM;
    JournalSuperblock jsb;
    memcpy(&jsb, superblock_, sizeof(jsb));
    struct Revoked {
        uint64_t block;
        uint32_t sequence;
    };
    Vector<Revoked> revoked;
    auto next = [this](uint32_t at) { return at + 1 >= length_ ? first_ : at + 1; };
    auto is_revoked = [&revoked](uint64_t b, uint32_t seq) {
        for (const Revoked& r : revoked)
            if (r.block == b && static_cast<int32_t>(r.sequence - seq) >= 0) return true;
        return false;
    };
    error = "the journal cannot be read";
    // Pass 1: find the committed transactions and their revoke records.
    uint32_t end_sequence = from_be32(jsb.sequence);
    {
        uint32_t at = from_be32(jsb.start);
        for (uint32_t guard = 0; guard < length_; ++guard) {
            if (read_log(at, block.get()) < 0) return -EIO;
            if (is_header(block.get(), kJournalDescriptor, end_sequence)) {
                const uint8_t* p = block.get() + sizeof(JournalHeader);
                const uint8_t* limit = block.get() + bs;
                uint32_t blocks = 0;
                while (p + kTagSize <= limit) {
                    Tag t;
                    memcpy(&t, p, sizeof(t));
                    const uint16_t flags = from_be16(t.flags);
                    p += kTagSize + ((flags & kTagSameUuid) ? 0 : kUuidSize);
                    ++blocks;
                    if (flags & kTagLast) break;
                }
                at = next(at);
                for (uint32_t i = 0; i < blocks; ++i) at = next(at);
            } else if (is_header(block.get(), kJournalRevoke, end_sequence)) {
                uint32_t count;
                memcpy(&count, block.get() + sizeof(JournalHeader), 4);
                count = from_be32(count);
                if (count > bs) count = bs;
                for (uint32_t off = sizeof(JournalHeader) + 4; off + 4 <= count; off += 4) {
                    uint32_t b;
                    memcpy(&b, block.get() + off, 4);
                    if (!revoked.push_back({from_be32(b), end_sequence})) return -ENOMEM;
                }
                at = next(at);
            } else if (is_header(block.get(), kJournalCommit, end_sequence)) {
                ++end_sequence;
                at = next(at);
            } else {
                break;
            }
        }
    }
    // Pass 2: write home every block of the committed transactions, in order.
    uint32_t at = from_be32(jsb.start);
    for (uint32_t seq = from_be32(jsb.sequence), guard = 0; seq != end_sequence && guard < length_; ++guard) {
        if (read_log(at, block.get()) < 0) return -EIO;
        at = next(at);
        if (is_header(block.get(), kJournalCommit, seq)) {
            ++seq;
            ++replayed;
            continue;
        }
        if (is_header(block.get(), kJournalRevoke, seq)) continue;
        if (!is_header(block.get(), kJournalDescriptor, seq)) break;
        const uint8_t* p = block.get() + sizeof(JournalHeader);
        const uint8_t* limit = block.get() + bs;
        while (p + kTagSize <= limit) {
            Tag t;
            memcpy(&t, p, sizeof(t));
            const uint16_t flags = from_be16(t.flags);
            p += kTagSize + ((flags & kTagSameUuid) ? 0 : kUuidSize);
            if (read_log(at, data.get()) < 0) return -EIO;
            at = next(at);
            const uint64_t home = from_be32(t.block);
            if (!is_revoked(home, seq)) {
                if (flags & kTagEscape) {
                    const uint32_t magic = to_be32(kJournalMagic);
                    memcpy(data.get(), &magic, 4);
                }
                cache_.forget(home);
                if (cache_.write_blocks(home, data.get(), 1) < 0) return -EIO;
            }
            if (flags & kTagLast) break;
        }
    }
    sequence_ = end_sequence;
    if (cache_.device().flush() < 0) return -EIO;
    return write_superblock(0);
}

int64_t Journal::write_superblock(uint32_t start) {
    JournalSuperblock jsb;
    memcpy(&jsb, superblock_, sizeof(jsb));
    jsb.sequence = to_be32(sequence_);
    jsb.start = to_be32(start);
    memcpy(superblock_, &jsb, sizeof(jsb));
    if (write_log(0, superblock_) < 0) return -EIO;
    return cache_.device().flush() < 0 ? -EIO : 0;
}

int64_t Journal::start() { return write_superblock(first_); }
int64_t Journal::stop() { return write_superblock(0); }

int64_t Journal::commit() {
    const Vector<Buffer*>& dirty = cache_.dirty();
    block::Device& device = cache_.device();
    // File data written since the last commit reaches the device before the metadata naming it.
    if (device.flush() < 0) return -EIO;
    if (dirty.empty()) return 0;
    if (dirty.size() > capacity_) return -ENOSPC;  // begin_operation commits long before this
    const uint32_t bs = cache_.block_size();
    BlockBuffer descriptor(bs), copy(bs);
    if (!descriptor.get() || !copy.get()) return -ENOMEM;
    const uint32_t per_descriptor = tags_per_descriptor();
    uint32_t at = first_;
    for (size_t done = 0; done < dirty.size();) {
        const size_t batch = dirty.size() - done < per_descriptor ? dirty.size() - done : per_descriptor;
        memset(descriptor.get(), 0, bs);
        JournalHeader h = header(kJournalDescriptor, sequence_);
        memcpy(descriptor.get(), &h, sizeof(h));
        uint8_t* p = descriptor.get() + sizeof(JournalHeader);
        const uint32_t descriptor_at = at++;
        for (size_t i = 0; i < batch; ++i) {
            const Buffer& b = *dirty[done + i];
            uint16_t flags = i == 0 ? 0 : kTagSameUuid;
            if (i + 1 == batch) flags |= kTagLast;
            const uint8_t* contents = b.data;
            uint32_t magic;
            memcpy(&magic, b.data, 4);
            if (from_be32(magic) == kJournalMagic) {  // would read as a journal block: escaped
                memcpy(copy.get(), b.data, bs);
                memset(copy.get(), 0, 4);
                contents = copy.get();
                flags |= kTagEscape;
            }
            Tag t{to_be32(static_cast<uint32_t>(b.block)), 0, to_be16(flags)};
            memcpy(p, &t, sizeof(t));
            p += sizeof(t);
            if (i == 0) {
                memcpy(p, uuid_, kUuidSize);
                p += kUuidSize;
            }
            if (write_log(at++, contents) < 0) return -EIO;
        }
        if (write_log(descriptor_at, descriptor.get()) < 0) return -EIO;
        done += batch;
    }
    if (device.flush() < 0) return -EIO;
    memset(descriptor.get(), 0, bs);
    JournalHeader h = header(kJournalCommit, sequence_);
    memcpy(descriptor.get(), &h, sizeof(h));
    if (write_log(at, descriptor.get()) < 0 || device.flush() < 0) return -EIO;
    // Committed: a crash from here on is finished by a replay. Checkpoint.
    for (const Buffer* b : dirty)
        if (cache_.write_blocks(b->block, b->data, 1) < 0) return -EIO;
    if (device.flush() < 0) return -EIO;
    cache_.mark_all_clean();
    ++sequence_;
    return write_superblock(first_);
}

}  // namespace kiln::fs::ext4
