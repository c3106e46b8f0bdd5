#include "devices/virtio/block.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kiln::vmm::virtio {
namespace {

namespace abi = kiln::abi::virtio;

constexpr size_t kHeader = sizeof(abi::BlockRequestHeader);

// The iovecs that cover bytes [offset, offset + length) of `parts` (which hold at least that).
std::vector<iovec> slice(const std::vector<iovec>& parts, size_t offset, size_t length) {
    std::vector<iovec> out;
    for (const iovec& v : parts) {
        if (length == 0) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        const size_t n = std::min(v.iov_len - offset, length);
        out.push_back({static_cast<uint8_t*>(v.iov_base) + offset, n});
        offset = 0;
        length -= n;
    }
    return out;
}

void copy_from(const std::vector<iovec>& parts, size_t offset, void* to, size_t length) {
    auto* out = static_cast<uint8_t*>(to);
    for (const iovec& v : slice(parts, offset, length)) {
        std::memcpy(out, v.iov_base, v.iov_len);
        out += v.iov_len;
    }
}

void copy_to(const std::vector<iovec>& parts, size_t offset, const void* from, size_t length) {
    const auto* in = static_cast<const uint8_t*>(from);
    for (const iovec& v : slice(parts, offset, length)) {
        std::memcpy(v.iov_base, in, v.iov_len);
        in += v.iov_len;
    }
}

// preadv or pwritev until every byte moved; false on an error or the file's end (it shrank).
bool transfer(int fd, bool write, std::vector<iovec> parts, uint64_t offset) {
    std::erase_if(parts, [](const iovec& v) { return v.iov_len == 0; });
    size_t first = 0;
    while (first < parts.size()) {
        const int count = static_cast<int>(std::min<size_t>(parts.size() - first, IOV_MAX));
        const ssize_t n = write ? ::pwritev(fd, &parts[first], count, static_cast<off_t>(offset))
                                : ::preadv(fd, &parts[first], count, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        offset += static_cast<uint64_t>(n);
        size_t left = static_cast<size_t>(n);
        while (first < parts.size() && left >= parts[first].iov_len) left -= parts[first++].iov_len;
        if (left > 0) {
            parts[first].iov_base = static_cast<uint8_t*>(parts[first].iov_base) + left;
            parts[first].iov_len -= left;
        }
    }
    return true;
}

}  // namespace

Block::Block(VolumeFile file, uint32_t index)
    : file_(std::move(file)), sectors_(file_.bytes / 512), serial_("kiln-vol" + std::to_string(index)) {}

uint64_t Block::features() const {
    uint64_t f = abi::kFeatureRingEventIdx | abi::kBlockFeatureFlush | abi::kBlockFeatureSegMax;
    if (file_.read_only) f |= abi::kBlockFeatureRo;
    return f;
}

void Block::read_config(uint64_t offset, std::span<uint8_t> data) {
    // struct virtio_blk_config up to seg_max: capacity, size_max (0: not offered), seg_max.
    uint8_t config[16] = {};
    std::memcpy(config + abi::kBlockConfigCapacity, &sectors_, 8);
    const uint32_t seg_max = kSegMax;
    std::memcpy(config + abi::kBlockConfigSegMax, &seg_max, 4);
    for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof(config) ? config[offset + i] : 0;
}

void Block::activate(std::span<Queue> queues, uint64_t, Interrupt& interrupt) {
    std::lock_guard lock(mutex_);
    queue_ = &queues[0];
    interrupt_ = &interrupt;
}

void Block::reset() {
    std::lock_guard lock(mutex_);
    queue_ = nullptr;
    interrupt_ = nullptr;
}

void Block::process_queues() {
    std::lock_guard lock(mutex_);
    if (queue_ == nullptr) return;
    // A broken queue (a malformed chain) pops nothing until the driver resets the device, while
    // its ring still shows buffers: stop there rather than spin.
    do {
        while (auto chain = queue_->pop()) queue_->push(chain->head, serve(*chain));
    } while (!queue_->broken() && queue_->enable_notifications());
    if (queue_->needs_interrupt()) interrupt_->raise(abi::kInterruptUsedBuffer);
}

uint32_t Block::serve(const Chain& chain) {
    const size_t writable = chain.writable_bytes();
    if (writable == 0) return 0;  // nowhere to put a status: returned untouched
    uint32_t data_written = 0;
    const uint8_t status = execute(chain, data_written);
    copy_to(chain.writable, writable - 1, &status, 1);
    return data_written + 1;
}

uint8_t Block::execute(const Chain& chain, uint32_t& data_written) {
    const size_t readable = chain.readable_bytes(), writable = chain.writable_bytes();
    // Lengths are the driver's: descriptors may overlap, so their sum can exceed guest memory.
    constexpr size_t kMaxBytes = 1ull << 31;
    if (readable < kHeader || readable > kMaxBytes || writable > kMaxBytes) return abi::kBlockStatusIoErr;
    abi::BlockRequestHeader h;
    copy_from(chain.readable, 0, &h, kHeader);  // once: the guest may change it meanwhile
    const auto in_volume = [this, &h](size_t bytes) {
        return bytes % 512 == 0 && h.sector <= sectors_ && bytes / 512 <= sectors_ - h.sector;
    };
    switch (h.type) {
        case abi::kBlockIn: {
            const size_t bytes = writable - 1;
            if (readable != kHeader || !in_volume(bytes)) return abi::kBlockStatusIoErr;
            if (!transfer(file_.fd.get(), false, slice(chain.writable, 0, bytes), h.sector * 512))
                return abi::kBlockStatusIoErr;
            data_written = static_cast<uint32_t>(bytes);
            return abi::kBlockStatusOk;
        }
        case abi::kBlockOut: {
            const size_t bytes = readable - kHeader;
            if (file_.read_only || writable != 1 || !in_volume(bytes)) return abi::kBlockStatusIoErr;
            if (!transfer(file_.fd.get(), true, slice(chain.readable, kHeader, bytes), h.sector * 512))
                return abi::kBlockStatusIoErr;
            return abi::kBlockStatusOk;
        }
        case abi::kBlockFlush:
            if (readable != kHeader || writable != 1) return abi::kBlockStatusIoErr;
            return ::fdatasync(file_.fd.get()) == 0 ? abi::kBlockStatusOk : abi::kBlockStatusIoErr;
        case abi::kBlockGetId: {
            if (readable != kHeader) return abi::kBlockStatusIoErr;
            char id[abi::kBlockIdBytes] = {};  // NUL-padded, unterminated at 20 bytes
            std::memcpy(id, serial_.data(), std::min(serial_.size(), sizeof(id)));
            const size_t bytes = std::min(writable - 1, sizeof(id));
            copy_to(chain.writable, 0, id, bytes);
            data_written = static_cast<uint32_t>(bytes);
            return abi::kBlockStatusOk;
        }
        default: return abi::kBlockStatusUnsupported;
    }
}

}  // namespace kiln::vmm::virtio
