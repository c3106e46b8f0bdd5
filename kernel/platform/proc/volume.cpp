// The proc backend's block devices: the volume files kiln-proc opened and locked, their
// descriptors in the handoff (abi/kiln/proc.h). A read is one host pread64, a write one pwrite64
// (repeated for what a short transfer left), a flush one fdatasync: the only host calls on them,
// and kiln-proc's seccomp filter allows exactly those on exactly these descriptors (pwrite64 and
// fdatasync not on a read-only one). Synchronous: the host call blocks the instance, as a
// virtio-blk request's wait would block its thread.
#include "core/errno.h"
#include "drivers/block/device.h"
#include "platform/proc/host.h"
#include "platform/proc/proc.h"

namespace kiln::proc {
namespace {

constexpr long kEintr = -4;

class VolumeDevice final : public block::Device {
  public:
    explicit VolumeDevice(uint32_t index) : index_(index) {
        name_[0] = 'p', name_[1] = 'r', name_[2] = 'o', name_[3] = 'c';
        name_[4] = static_cast<char>(index < 10 ? '0' + index : '1');
        name_[5] = index < 10 ? 0 : static_cast<char>('0' + index - 10);
        name_[6] = 0;
    }

    const char* name() const override { return name_; }
    uint64_t sector_count() const override { return handoff().volume_bytes[index_] / block::kSectorSize; }
    bool read_only() const override { return handoff().volume_read_only[index_] != 0; }

    int read(uint64_t sector, void* buffer, size_t bytes) override {
        if (!in_volume(sector, bytes)) return -EINVAL;
        auto* at = static_cast<uint8_t*>(buffer);
        uint64_t offset = sector * block::kSectorSize;
        while (bytes > 0) {
            const long n = host::pread64(fd(), at, bytes, offset);
            if (n == kEintr) continue;
            if (n <= 0) return -EIO;  // an error, or the file ended early (it shrank)
            at += n, offset += static_cast<uint64_t>(n), bytes -= static_cast<size_t>(n);
        }
        return 0;
    }

    int write(uint64_t sector, const void* buffer, size_t bytes) override {
        if (read_only()) return -EROFS;
        if (!in_volume(sector, bytes)) return -EINVAL;
        const auto* at = static_cast<const uint8_t*>(buffer);
        uint64_t offset = sector * block::kSectorSize;
        while (bytes > 0) {
            const long n = host::pwrite64(fd(), at, bytes, offset);
            if (n == kEintr) continue;
            if (n <= 0) return -EIO;
            at += n, offset += static_cast<uint64_t>(n), bytes -= static_cast<size_t>(n);
        }
        return 0;
    }

    int flush() override {
        if (read_only()) return 0;  // nothing written; the filter allows no fdatasync on it
        long result;
        do result = host::fdatasync(fd());
        while (result == kEintr);
        return result == 0 ? 0 : -EIO;
    }

  private:
    // The handoff's: a process restored from a snapshot has the file at a descriptor of its own.
    int fd() const { return handoff().volume_fds[index_]; }

    bool in_volume(uint64_t sector, size_t bytes) const {
        const uint64_t sectors = sector_count();
        return bytes % block::kSectorSize == 0 && sector <= sectors && bytes / block::kSectorSize <= sectors - sector;
    }

    uint32_t index_;
    char name_[8];
};

}  // namespace
}  // namespace kiln::proc

namespace kiln::platform {

bool ProcBackend::start_block_devices() {
    const abi::ProcHandoff& h = proc::handoff();
    const uint32_t count = h.volume_count < abi::kProcMaxVolumes ? h.volume_count : abi::kProcMaxVolumes;
    for (uint32_t i = 0; i < count; ++i) block::register_device(new proc::VolumeDevice(i));
    return true;  // the proc backend has no virtio devices
}

}  // namespace kiln::platform
