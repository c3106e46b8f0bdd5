#include "snapshot/state_file.h"

#include <zlib.h>

#include "util/error.h"

namespace kiln::vmm::snapshot {
namespace {

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'S', 'N', 'A', 'P'};
constexpr size_t kHeader = 16;
constexpr uint64_t kMaxSection = 1ull << 26;  // 64 MiB: far more than any real section

// Grows then copies (rather than insert from a pointer range), which GCC 12's bounds checker
// follows without a false -Warray-bounds.
template <typename T>
void put(std::vector<uint8_t>& out, T value) {
    const size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

uint32_t crc(const uint8_t* data, size_t size) {
    return static_cast<uint32_t>(crc32(0, data, static_cast<uInt>(size)));
}

}  // namespace

void Writer::add(Tag tag, uint32_t index, const void* data, size_t size) {
    put(body_, static_cast<uint32_t>(tag));
    put(body_, index);
    put(body_, static_cast<uint64_t>(size));
    const auto* p = static_cast<const uint8_t*>(data);
    body_.insert(body_.end(), p, p + size);
    ++sections_;
}

std::vector<uint8_t> Writer::finish() const {
    std::vector<uint8_t> out(kHeader + body_.size() + 4);
    std::memcpy(out.data(), kMagic, 8);
    std::memcpy(out.data() + 8, &kVersion, 4);
    std::memcpy(out.data() + 12, &sections_, 4);
    if (!body_.empty()) std::memcpy(out.data() + kHeader, body_.data(), body_.size());
    const uint32_t sum = crc(out.data(), kHeader + body_.size());
    std::memcpy(out.data() + kHeader + body_.size(), &sum, 4);
    return out;
}

Reader::Reader(std::vector<uint8_t> bytes, const std::string& name) : name_(name) {
    if (bytes.size() < kHeader + 4) fail("the state file is truncated (" + std::to_string(bytes.size()) + " bytes)");
    if (std::memcmp(bytes.data(), kMagic, 8) != 0) fail("not a Kiln snapshot (bad magic)");
    uint32_t version, count, stored;
    std::memcpy(&version, bytes.data() + 8, 4);
    std::memcpy(&count, bytes.data() + 12, 4);
    if (version != kVersion)
        fail("snapshot version " + std::to_string(version) + ", this kiln-vmm reads version " +
             std::to_string(kVersion));
    std::memcpy(&stored, bytes.data() + bytes.size() - 4, 4);
    if (crc(bytes.data(), bytes.size() - 4) != stored) fail("checksum mismatch: the state file is corrupt");
    size_t at = kHeader;
    const size_t end = bytes.size() - 4;
    for (uint32_t i = 0; i < count; ++i) {
        if (end - at < 16) fail("section " + std::to_string(i) + " is truncated");
        uint32_t tag, index;
        uint64_t length;
        std::memcpy(&tag, bytes.data() + at, 4);
        std::memcpy(&index, bytes.data() + at + 4, 4);
        std::memcpy(&length, bytes.data() + at + 8, 8);
        at += 16;
        if (length > kMaxSection || length > end - at) fail("section " + std::to_string(i) + " runs past the end");
        sections_[{tag, index}].assign(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                                       bytes.begin() + static_cast<std::ptrdiff_t>(at + length));
        at += length;
    }
    if (at != end) fail("trailing bytes after the last section");
}

bool Reader::has(Tag tag, uint32_t index) const { return sections_.count({static_cast<uint32_t>(tag), index}) != 0; }

const std::vector<uint8_t>& Reader::get(Tag tag, uint32_t index) const {
    auto it = sections_.find({static_cast<uint32_t>(tag), index});
    if (it == sections_.end())
        fail("section " + std::to_string(static_cast<uint32_t>(tag)) + "/" + std::to_string(index) + " is missing");
    return it->second;
}

void Reader::fail(const std::string& why) const { throw VmmError("snapshot " + name_ + ": " + why); }

}  // namespace kiln::vmm::snapshot
