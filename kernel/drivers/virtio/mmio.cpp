#include "drivers/virtio/mmio.h"

#include "console/console.h"
#include "mm/layout.h"

namespace kiln::virtio {

namespace abi = kiln::abi::virtio;

bool parse_device_parameter(StringView text, uint64_t& phys, uint32_t& irq) {
    const size_t at = text.find('@');
    const size_t colon = text.find(':', at == StringView::npos ? 0 : at);
    if (at == StringView::npos || colon == StringView::npos) return false;
    uint64_t address, line;
    if (!parse_u64(text.substr(at + 1, colon - at - 1), address) || !parse_u64(text.substr(colon + 1), line))
        return false;
    // The window must lie in the direct map (QEMU's microvm packs 512-byte windows, kiln-vmm
    // uses pages); IOAPIC pins go to 23.
    if (address % 512 != 0 || address >= mm::kDirectMapSize || line > 23) return false;
    phys = address;
    irq = static_cast<uint32_t>(line);
    return true;
}

uint32_t MmioDevice::read(uint32_t reg) const {
    return *reinterpret_cast<volatile uint32_t*>(static_cast<char*>(mm::phys_to_virt(phys_)) + reg);
}

void MmioDevice::write(uint32_t reg, uint32_t value) {
    *reinterpret_cast<volatile uint32_t*>(static_cast<char*>(mm::phys_to_virt(phys_)) + reg) = value;
}

uint32_t MmioDevice::device_id() const {
    if (read(abi::kMagicValue) != abi::kMagic || read(abi::kVersionReg) != abi::kVersion) return 0;
    return read(abi::kDeviceId);
}

bool MmioDevice::begin(uint64_t wanted, uint64_t& negotiated) {
    write(abi::kStatus, 0);
    write(abi::kStatus, abi::kAcknowledge);
    write(abi::kStatus, abi::kAcknowledge | abi::kDriver);
    write(abi::kDeviceFeaturesSel, 0);
    uint64_t offered = read(abi::kDeviceFeatures);
    write(abi::kDeviceFeaturesSel, 1);
    offered |= uint64_t{read(abi::kDeviceFeatures)} << 32;
    negotiated = offered & (wanted | abi::kFeatureVersion1);
    if (!(negotiated & abi::kFeatureVersion1)) return false;  // a legacy device: not supported
    write(abi::kDriverFeaturesSel, 0);
    write(abi::kDriverFeatures, static_cast<uint32_t>(negotiated));
    write(abi::kDriverFeaturesSel, 1);
    write(abi::kDriverFeatures, static_cast<uint32_t>(negotiated >> 32));
    write(abi::kStatus, abi::kAcknowledge | abi::kDriver | abi::kFeaturesOk);
    return (read(abi::kStatus) & abi::kFeaturesOk) != 0;
}

bool MmioDevice::setup_queue(uint16_t index, Queue& queue, uint16_t size) {
    write(abi::kQueueSel, index);
    const uint32_t max = read(abi::kQueueNumMax);
    if (max == 0 || read(abi::kQueueReady) != 0) return false;
    if (size > max) size = static_cast<uint16_t>(max);
    if (!queue.init(size)) return false;
    write(abi::kQueueNum, size);
    write(abi::kQueueDescLow, static_cast<uint32_t>(queue.desc_phys()));
    write(abi::kQueueDescHigh, static_cast<uint32_t>(queue.desc_phys() >> 32));
    write(abi::kQueueDriverLow, static_cast<uint32_t>(queue.avail_phys()));
    write(abi::kQueueDriverHigh, static_cast<uint32_t>(queue.avail_phys() >> 32));
    write(abi::kQueueDeviceLow, static_cast<uint32_t>(queue.used_phys()));
    write(abi::kQueueDeviceHigh, static_cast<uint32_t>(queue.used_phys() >> 32));
    write(abi::kQueueReady, 1);
    return true;
}

void MmioDevice::driver_ok() {
    write(abi::kStatus, abi::kAcknowledge | abi::kDriver | abi::kFeaturesOk | abi::kDriverOk);
}

void MmioDevice::fail() { write(abi::kStatus, abi::kFailed); }

void MmioDevice::notify(uint16_t queue) { write(abi::kQueueNotify, queue); }

uint32_t MmioDevice::take_interrupt() {
    const uint32_t status = read(abi::kInterruptStatus);
    if (status) write(abi::kInterruptAck, status);
    return status;
}

uint8_t MmioDevice::config8(uint32_t offset) const {
    return *(static_cast<volatile uint8_t*>(mm::phys_to_virt(phys_)) + abi::kConfig + offset);
}

uint16_t MmioDevice::config16(uint32_t offset) const {
    return *reinterpret_cast<volatile uint16_t*>(static_cast<char*>(mm::phys_to_virt(phys_)) + abi::kConfig + offset);
}

}  // namespace kiln::virtio
