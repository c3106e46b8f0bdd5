// libFuzzer: a hostile driver against kiln-vmm's virtio-blk device model (vmm/devices/virtio/
// block.cpp) and its split virtqueue (queue.cpp). Each input lays out a small guest memory:
// descriptors (addresses anywhere, inside and past the memory; any lengths, flags and links), the
// available ring, and request headers and data; the device then serves every chain it finds,
// against a small volume (a memfd), read-write or read-only. Nothing may crash, and no byte may
// move outside guest memory or the volume (AddressSanitizer watches both).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/virtio/block.h"
#include "fuzz_input.h"
#include "kvm/guest_memory.h"

namespace kiln::vmm::virtio {
// The transport's interrupt writes to KVM's irqfd; here there is none.
void Interrupt::raise(uint32_t status_bits) { status_.fetch_or(status_bits); }
}  // namespace kiln::vmm::virtio

namespace {

using namespace kiln::vmm;
using kiln::fuzz::FuzzInput;
namespace abi = kiln::abi::virtio;

constexpr uint64_t kMemory = 64 << 10;
constexpr uint64_t kDescGpa = 0x0, kAvailGpa = 0x400, kUsedGpa = 0x800, kDataGpa = 0x1000;
constexpr uint16_t kQueueSize = 16;
constexpr uint64_t kVolumeBytes = 64 * 512;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static GuestMemory memory(kMemory);
    static const int volume_fd = [] {
        const int fd = ::memfd_create("fuzz-volume", MFD_CLOEXEC);
        if (fd < 0 || ::ftruncate(fd, kVolumeBytes) != 0) __builtin_trap();
        return fd;
    }();
    std::memset(memory.host_base(), 0, kMemory);
    FuzzInput in(data, size);
    const auto mode = in.take<uint8_t>();
    const bool read_only = mode & 1, event_idx = mode & 2;

    // Descriptors: addresses in 256-byte steps up to 16 MiB (most inside the 64 KiB), else raw.
    const auto count = static_cast<uint16_t>(in.take<uint8_t>() % (kQueueSize + 1));
    for (uint16_t i = 0; i < count; ++i) {
        abi::Descriptor d{};
        const auto where = in.take<uint16_t>();
        d.addr = (mode & 4) ? in.take<uint64_t>() : uint64_t{where} * 16 % (kMemory + 0x1000) + kDataGpa;
        d.len = (mode & 8) ? in.take<uint32_t>() : in.take<uint16_t>();
        d.flags = in.take<uint8_t>() & 7;
        d.next = in.take<uint8_t>() % (kQueueSize + 2);
        std::memcpy(memory.host_base() + kDescGpa + i * sizeof(d), &d, sizeof(d));
    }
    const auto available = in.take<uint8_t>();
    for (uint16_t i = 0; i < kQueueSize; ++i) {
        const auto head = static_cast<uint16_t>(in.take<uint8_t>() % (kQueueSize + 2));
        std::memcpy(memory.host_base() + kAvailGpa + 4 + 2 * i, &head, 2);
    }
    const uint16_t avail_idx = available;
    std::memcpy(memory.host_base() + kAvailGpa + 2, &avail_idx, 2);
    // Request headers and data: the rest of the input, at the data area.
    std::memcpy(memory.host_base() + kDataGpa, in.rest(), std::min<size_t>(in.rest_size(), kMemory - kDataGpa));

    VolumeFile file;
    file.fd.reset(::dup(volume_fd));
    file.bytes = kVolumeBytes;
    file.read_only = read_only;
    file.path = "fuzz";
    virtio::Block block(std::move(file), 0);
    uint8_t config[24];
    block.read_config(in.take<uint8_t>() % 32, config);

    std::vector<virtio::Queue> queues(1);
    queues[0].size = kQueueSize;
    queues[0].desc_gpa = kDescGpa;
    queues[0].avail_gpa = kAvailGpa;
    queues[0].used_gpa = kUsedGpa;
    if (!queues[0].activate(memory, event_idx)) __builtin_trap();
    virtio::Interrupt interrupt(-1);
    block.activate(queues, abi::kFeatureVersion1, interrupt);
    block.process_queues();
    block.reset();
    return 0;
}
