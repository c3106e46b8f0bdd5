#include "fs/ext4/extent_tree.h"

#include "core/errno.h"
#include "fs/ext4/file_system.h"
#include "lib/string.h"

namespace kiln::fs::ext4 {
namespace {

constexpr uint16_t kRootMax = 4;  // i_block's 60 bytes: the header and four entries
constexpr int kMaxDepth = 5;

ExtentHeader* header_of(uint8_t* node) { return reinterpret_cast<ExtentHeader*>(node); }
const ExtentHeader* header_of(const uint8_t* node) { return reinterpret_cast<const ExtentHeader*>(node); }
Extent* extents_of(uint8_t* node) { return reinterpret_cast<Extent*>(node + sizeof(ExtentHeader)); }
const Extent* extents_of(const uint8_t* node) { return reinterpret_cast<const Extent*>(node + sizeof(ExtentHeader)); }
ExtentIndex* indexes_of(uint8_t* node) { return reinterpret_cast<ExtentIndex*>(node + sizeof(ExtentHeader)); }
const ExtentIndex* indexes_of(const uint8_t* node) {
    return reinterpret_cast<const ExtentIndex*>(node + sizeof(ExtentHeader));
}

uint64_t start_of(const Extent& e) { return (static_cast<uint64_t>(e.start_hi) << 32) | e.start_lo; }
void set_start(Extent& e, uint64_t start) {
    e.start_lo = static_cast<uint32_t>(start);
    e.start_hi = static_cast<uint16_t>(start >> 32);
}
uint32_t length_of(const Extent& e) { return e.len > kMaxInitializedExtent ? e.len - kMaxInitializedExtent : e.len; }
bool unwritten(const Extent& e) { return e.len > kMaxInitializedExtent; }
uint64_t leaf_of(const ExtentIndex& i) { return (static_cast<uint64_t>(i.leaf_hi) << 32) | i.leaf_lo; }
void set_leaf(ExtentIndex& i, uint64_t block) {
    i.leaf_lo = static_cast<uint32_t>(block);
    i.leaf_hi = static_cast<uint16_t>(block >> 32);
}

// A node's header is sane for a node of `capacity` entries.
bool valid(const uint8_t* node, uint16_t capacity) {
    const ExtentHeader* h = header_of(node);
    return h->magic == kExtentMagic && h->max <= capacity && h->entries <= h->max;
}

uint16_t block_capacity(uint32_t block_size) {
    return static_cast<uint16_t>((block_size - sizeof(ExtentHeader)) / sizeof(Extent));
}

void add_sectors(Inode& inode, int64_t blocks, uint32_t block_size) {
    uint64_t sectors = (static_cast<uint64_t>(inode.blocks_high) << 32) | inode.blocks_lo;
    sectors += static_cast<uint64_t>(blocks * static_cast<int64_t>(block_size / 512));
    inode.blocks_lo = static_cast<uint32_t>(sectors);
    inode.blocks_high = static_cast<uint16_t>(sectors >> 32);
}

int64_t visit_node(BlockCache& cache, const uint8_t* node, uint16_t capacity, int depth, ExtentVisitor visit,
                   void* context, bool& stop) {
    if (!valid(node, capacity) || depth > kMaxDepth) return -EUCLEAN;
    const ExtentHeader* h = header_of(node);
    if (h->depth == 0) {
        for (uint16_t i = 0; i < h->entries && !stop; ++i) {
            const Extent& e = extents_of(node)[i];
            if (!visit(context, e.block, start_of(e), length_of(e))) stop = true;
        }
        return 0;
    }
    for (uint16_t i = 0; i < h->entries && !stop; ++i) {
        Buffer* child = cache.get(leaf_of(indexes_of(node)[i]));
        if (!child) return -EIO;
        if (header_of(child->data)->depth + 1 != h->depth) return -EUCLEAN;
        if (int64_t r =
                visit_node(cache, child->data, block_capacity(cache.block_size()), depth + 1, visit, context, stop);
            r < 0)
            return r;
    }
    return 0;
}

// Puts an extent into a leaf, merging it into the one before when they touch. False: full.
bool leaf_insert(uint8_t* node, uint32_t logical, uint64_t physical, uint32_t length) {
    ExtentHeader* h = header_of(node);
    Extent* e = extents_of(node);
    uint16_t at = 0;
    while (at < h->entries && e[at].block < logical) ++at;
    if (at > 0) {
        Extent& before = e[at - 1];
        if (!unwritten(before) && before.block + before.len == logical && start_of(before) + before.len == physical &&
            before.len + length <= kMaxInitializedExtent) {
            before.len = static_cast<uint16_t>(before.len + length);
            return true;
        }
    }
    if (h->entries == h->max) return false;
    memmove(&e[at + 1], &e[at], static_cast<size_t>(h->entries - at) * sizeof(Extent));
    e[at].block = logical;
    e[at].len = static_cast<uint16_t>(length);
    set_start(e[at], physical);
    ++h->entries;
    return true;
}

// Moves the root's extents into a leaf block of their own: the root becomes an index of one.
int64_t grow_root(FileSystem& fs, Inode& inode, uint64_t goal) {
    uint32_t got;
    const uint64_t block = fs.allocate_blocks(goal, 1, got);
    if (block == 0) return -ENOSPC;
    Buffer* leaf = fs.cache().get_zeroed(block);
    if (!leaf) return -ENOMEM;
    ExtentHeader* root = header_of(inode.block);
    memcpy(leaf->data, inode.block, sizeof(ExtentHeader) + root->entries * sizeof(Extent));
    header_of(leaf->data)->max = block_capacity(fs.block_size());
    fs.cache().mark_dirty(*leaf);
    const uint32_t first = root->entries ? extents_of(inode.block)[0].block : 0;
    root->depth = 1;
    root->entries = 1;
    indexes_of(inode.block)[0] = ExtentIndex{first, 0, 0, 0};
    set_leaf(indexes_of(inode.block)[0], block);
    add_sectors(inode, 1, fs.block_size());
    return 0;
}

// Splits full leaf `index` of a depth-1 root in two, for an extent at `logical`. EFBIG when the
// root has no room left. A file that grows at its end (the usual case) gets a new, empty last
// leaf, so its leaves end up full rather than half full.
int64_t split_leaf(FileSystem& fs, Inode& inode, uint16_t index, uint32_t logical) {
    ExtentHeader* root = header_of(inode.block);
    if (root->entries == kRootMax) return -EFBIG;
    ExtentIndex* indexes = indexes_of(inode.block);
    Buffer* old_leaf = fs.cache().get(leaf_of(indexes[index]));
    if (!old_leaf) return -EIO;
    uint32_t got;
    const uint64_t block = fs.allocate_blocks(leaf_of(indexes[index]) + 1, 1, got);
    if (block == 0) return -ENOSPC;
    Buffer* new_leaf = fs.cache().get_zeroed(block);
    if (!new_leaf) return -ENOMEM;
    ExtentHeader* old_header = header_of(old_leaf->data);
    const bool appending = index + 1 == root->entries && old_header->entries > 0 &&
                           logical > extents_of(old_leaf->data)[old_header->entries - 1].block;
    const uint16_t keep = appending ? old_header->entries : static_cast<uint16_t>(old_header->entries / 2);
    const uint16_t moved = static_cast<uint16_t>(old_header->entries - keep);
    *header_of(new_leaf->data) = ExtentHeader{kExtentMagic, moved, block_capacity(fs.block_size()), 0, 0};
    memcpy(extents_of(new_leaf->data), extents_of(old_leaf->data) + keep, moved * sizeof(Extent));
    old_header->entries = keep;
    fs.cache().mark_dirty(*old_leaf);
    fs.cache().mark_dirty(*new_leaf);
    memmove(&indexes[index + 2], &indexes[index + 1],
            static_cast<size_t>(root->entries - index - 1) * sizeof(ExtentIndex));
    indexes[index + 1] = ExtentIndex{appending ? logical : extents_of(new_leaf->data)[0].block, 0, 0, 0};
    set_leaf(indexes[index + 1], block);
    ++root->entries;
    add_sectors(inode, 1, fs.block_size());
    return 0;
}

int64_t insert_one(FileSystem& fs, Inode& inode, uint32_t logical, uint64_t physical, uint32_t length) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        ExtentHeader* root = header_of(inode.block);
        if (!valid(inode.block, kRootMax)) return -EUCLEAN;
        if (root->depth == 0) {
            if (leaf_insert(inode.block, logical, physical, length)) return 0;
            if (int64_t r = grow_root(fs, inode, physical); r < 0) return r;
            continue;
        }
        if (root->depth != 1) return -EFBIG;
        ExtentIndex* indexes = indexes_of(inode.block);
        uint16_t i = 0;
        while (i + 1 < root->entries && indexes[i + 1].block <= logical) ++i;
        Buffer* leaf = fs.cache().get(leaf_of(indexes[i]));
        if (!leaf) return -EIO;
        if (!valid(leaf->data, block_capacity(fs.block_size())) || header_of(leaf->data)->depth != 0) return -EUCLEAN;
        if (leaf_insert(leaf->data, logical, physical, length)) {
            fs.cache().mark_dirty(*leaf);
            indexes[i].block = extents_of(leaf->data)[0].block;  // an index starts where its leaf does
            return 0;
        }
        if (int64_t r = split_leaf(fs, inode, i, logical); r < 0) return r;
    }
    return -EFBIG;
}

// Frees what a leaf maps from `logical` on. Returns the extents left, or a negative errno.
int64_t trim_leaf(FileSystem& fs, Inode& inode, uint8_t* node, uint32_t logical) {
    ExtentHeader* h = header_of(node);
    Extent* e = extents_of(node);
    while (h->entries > 0) {
        Extent& last = e[h->entries - 1];
        const uint32_t length = length_of(last);
        if (last.block >= logical) {
            fs.free_blocks(start_of(last), length);
            add_sectors(inode, -static_cast<int64_t>(length), fs.block_size());
            --h->entries;
            continue;
        }
        if (last.block + length > logical) {
            const uint32_t keep = logical - last.block;
            fs.free_blocks(start_of(last) + keep, length - keep);
            add_sectors(inode, -static_cast<int64_t>(length - keep), fs.block_size());
            last.len = static_cast<uint16_t>(unwritten(last) ? keep + kMaxInitializedExtent : keep);
        }
        break;
    }
    return h->entries;
}

}  // namespace

int64_t map_block(BlockCache& cache, const Inode& inode, uint32_t logical, Mapping& out) {
    const uint8_t* node = inode.block;
    uint16_t capacity = kRootMax;
    uint64_t upper = 0x100000000ull;  // where the subtree being searched ends
    for (int depth = 0; depth <= kMaxDepth; ++depth) {
        if (!valid(node, capacity)) return -EUCLEAN;
        const ExtentHeader* h = header_of(node);
        if (h->depth == 0) {
            const Extent* e = extents_of(node);
            for (uint16_t i = 0; i < h->entries; ++i) {
                if (logical < e[i].block) {
                    out = {0, static_cast<uint32_t>(e[i].block - logical), false};
                    return 0;
                }
                if (logical - e[i].block < length_of(e[i])) {
                    const uint32_t into = logical - e[i].block;
                    out = {start_of(e[i]) + into, length_of(e[i]) - into, unwritten(e[i])};
                    return 0;
                }
            }
            const uint64_t hole = upper - logical;
            out = {0, static_cast<uint32_t>(hole > 0xffffffffu ? 0xffffffffu : hole), false};
            return 0;
        }
        const ExtentIndex* index = indexes_of(node);
        if (h->entries == 0 || logical < index[0].block) {
            out = {0, h->entries == 0 ? 1u : index[0].block - logical, false};
            return 0;
        }
        uint16_t i = 0;
        while (i + 1 < h->entries && index[i + 1].block <= logical) ++i;
        if (i + 1 < h->entries) upper = index[i + 1].block;
        Buffer* child = cache.get(leaf_of(index[i]));
        if (!child) return -EIO;
        if (header_of(child->data)->depth + 1 != h->depth) return -EUCLEAN;
        node = child->data;
        capacity = block_capacity(cache.block_size());
    }
    return -EUCLEAN;
}

int64_t for_each_extent(BlockCache& cache, const Inode& inode, ExtentVisitor visit, void* context) {
    bool stop = false;
    return visit_node(cache, inode.block, kRootMax, 0, visit, context, stop);
}

void init_extent_root(Inode& inode) {
    memset(inode.block, 0, sizeof(inode.block));
    *header_of(inode.block) = ExtentHeader{kExtentMagic, 0, kRootMax, 0, 0};
    inode.flags |= kInodeFlagExtents;
}

int64_t add_extent(FileSystem& fs, Inode& inode, uint32_t logical, uint64_t physical, uint32_t length) {
    while (length > 0) {
        const uint32_t part = length > kMaxInitializedExtent ? kMaxInitializedExtent : length;
        if (int64_t r = insert_one(fs, inode, logical, physical, part); r < 0) return r;
        logical += part;
        physical += part;
        length -= part;
    }
    return 0;
}

int64_t remove_extents_from(FileSystem& fs, Inode& inode, uint32_t logical) {
    ExtentHeader* root = header_of(inode.block);
    if (!valid(inode.block, kRootMax)) return -EUCLEAN;
    if (root->depth == 0) {
        int64_t r = trim_leaf(fs, inode, inode.block, logical);
        return r < 0 ? r : 0;
    }
    if (root->depth != 1) return -EFBIG;
    ExtentIndex* indexes = indexes_of(inode.block);
    while (root->entries > 0) {
        ExtentIndex& last = indexes[root->entries - 1];
        const uint64_t leaf_block = leaf_of(last);
        Buffer* leaf = fs.cache().get(leaf_block);
        if (!leaf) return -EIO;
        if (!valid(leaf->data, block_capacity(fs.block_size()))) return -EUCLEAN;
        const int64_t left = trim_leaf(fs, inode, leaf->data, logical);
        if (left < 0) return left;
        fs.cache().mark_dirty(*leaf);
        if (left > 0) break;
        fs.free_blocks(leaf_block, 1);  // forgets the buffer
        add_sectors(inode, -1, fs.block_size());
        --root->entries;
    }
    if (root->entries == 0) init_extent_root(inode);
    return 0;
}

}  // namespace kiln::fs::ext4
