// Virtio 1.2 over MMIO (version 2): the register layout, the split virtqueue, and the feature bits
// Kiln uses. Shared by kiln-vmm's device models and the kernel's drivers.
// Source: Virtual I/O Device (VIRTIO) Version 1.2, sections 2.7 (split virtqueues), 4.2.2 (MMIO).
#pragma once

#include <stdint.h>

namespace kiln::abi::virtio {

inline constexpr uint32_t kMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kVersion = 2;
inline constexpr uint32_t kVendor = 0x4b494c4e;  // "KILN"
inline constexpr uint64_t kMmioSize = 0x1000;

enum Register : uint32_t {
    kMagicValue = 0x000,
    kVersionReg = 0x004,
    kDeviceId = 0x008,
    kVendorId = 0x00c,
    kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014,
    kDriverFeatures = 0x020,
    kDriverFeaturesSel = 0x024,
    kQueueSel = 0x030,
    kQueueNumMax = 0x034,
    kQueueNum = 0x038,
    kQueueReady = 0x044,
    kQueueNotify = 0x050,
    kInterruptStatus = 0x060,
    kInterruptAck = 0x064,
    kStatus = 0x070,
    kQueueDescLow = 0x080,
    kQueueDescHigh = 0x084,
    kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094,
    kQueueDeviceLow = 0x0a0,
    kQueueDeviceHigh = 0x0a4,
    kConfigGeneration = 0x0fc,
    kConfig = 0x100,
};

enum DeviceType : uint32_t { kNet = 1, kBlock = 2, kConsole = 3, kRng = 4 };

enum Status : uint32_t {
    kAcknowledge = 1,
    kDriver = 2,
    kDriverOk = 4,
    kFeaturesOk = 8,
    kNeedsReset = 64,
    kFailed = 128,
};

inline constexpr uint32_t kInterruptUsedBuffer = 1;
inline constexpr uint32_t kInterruptConfigChange = 2;

// Feature bits (64-bit space).
inline constexpr uint64_t kFeatureRingEventIdx = 1ull << 29;
inline constexpr uint64_t kFeatureVersion1 = 1ull << 32;

inline constexpr uint64_t kNetFeatureCsum = 1ull << 0;       // device handles partial checksums
inline constexpr uint64_t kNetFeatureGuestCsum = 1ull << 1;  // driver handles partial checksums
inline constexpr uint64_t kNetFeatureMac = 1ull << 5;
inline constexpr uint64_t kNetFeatureGuestTso4 = 1ull << 7;
inline constexpr uint64_t kNetFeatureHostTso4 = 1ull << 11;
inline constexpr uint64_t kNetFeatureMrgRxbuf = 1ull << 15;
inline constexpr uint64_t kNetFeatureStatus = 1ull << 16;

// virtio-blk (section 5.2): features, the config's fields, requests and their status byte.
inline constexpr uint64_t kBlockFeatureSegMax = 1ull << 2;
inline constexpr uint64_t kBlockFeatureRo = 1ull << 5;
inline constexpr uint64_t kBlockFeatureFlush = 1ull << 9;
inline constexpr uint32_t kBlockConfigCapacity = 0;  // u64: 512-byte sectors
inline constexpr uint32_t kBlockConfigSegMax = 12;   // u32: data descriptors per request
inline constexpr uint32_t kBlockIn = 0;
inline constexpr uint32_t kBlockOut = 1;
inline constexpr uint32_t kBlockFlush = 4;
inline constexpr uint32_t kBlockGetId = 8;
inline constexpr uint8_t kBlockStatusOk = 0;
inline constexpr uint8_t kBlockStatusIoErr = 1;
inline constexpr uint8_t kBlockStatusUnsupported = 2;
inline constexpr uint32_t kBlockIdBytes = 20;
struct BlockRequestHeader {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
static_assert(sizeof(BlockRequestHeader) == 16);

// Split virtqueue (section 2.7).
inline constexpr uint16_t kDescNext = 1;
inline constexpr uint16_t kDescWrite = 2;
inline constexpr uint16_t kDescIndirect = 4;
inline constexpr uint16_t kAvailNoInterrupt = 1;
inline constexpr uint16_t kUsedNoNotify = 1;

struct Descriptor {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

struct UsedElement {
    uint32_t id;
    uint32_t len;
};

// The ring areas' sizes for a queue of `n` entries (with the event-index words).
constexpr uint64_t avail_size(uint32_t n) { return 6 + 2ull * n; }
constexpr uint64_t used_size(uint32_t n) { return 6 + 8ull * n; }

// vring_need_event: should the other side be notified, given its event index and the index
// moving from `old_idx` to `new_idx`?
constexpr bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
    return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

// struct virtio_net_hdr_v1 (section 5.1.6).
struct NetHeader {
    uint8_t flags;     // 1 = NEEDS_CSUM
    uint8_t gso_type;  // 0 none, 1 TCPv4, 3 UDP, 4 TCPv6
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(NetHeader) == 12);

inline constexpr uint8_t kNetHeaderNeedsCsum = 1;
inline constexpr uint8_t kNetGsoNone = 0;
inline constexpr uint8_t kNetGsoTcpV4 = 1;

}  // namespace kiln::abi::virtio
