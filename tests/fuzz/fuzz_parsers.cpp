// libFuzzer: the parsers of untrusted input outside the network stack: kernel images
// (kiln-vmm), application ELF files, cpio archives and command lines (kernel), boot info, snapshot
// state files (kiln-vmm --restore).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <zlib.h>

#include "boot/boot_info.h"
#include "boot/cmdline.h"
#include "boot/elf_image.h"
#include "fs/cpio.h"
#include "lib/cmdline.h"
#include "linux/elf.h"
#include "snapshot/state_file.h"
#include "util/error.h"

namespace {

class BufferMemory final : public kiln::PhysicalMemory {
  public:
    BufferMemory(const uint8_t* d, size_t n) : data_(d), size_(n) {}
    bool read(uint64_t phys, void* out, size_t size) const override {
        if (phys > size_ || size > size_ - phys) return false;
        std::memcpy(out, data_ + phys, size);
        return true;
    }

  private:
    const uint8_t* data_;
    size_t size_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        kiln::vmm::ElfImage::parse(std::span(data, size), "fuzz");
    } catch (const kiln::vmm::VmmError&) {
    }
    kiln::linux::AppImage app;
    kiln::linux::parse_app_elf(data, size, app);

    kiln::fs::CpioReader reader(data, size);
    kiln::fs::CpioEntry entry;
    while (reader.next(entry)) {
    }

    const std::string text(reinterpret_cast<const char*>(data), size);
    auto cmdline = std::make_unique<kiln::Cmdline>();
    cmdline->parse({text.data(), text.size()});
    for (size_t i = 0; i < cmdline->param_count(); ++i) cmdline->param(i);
    try {
        kiln::vmm::compose_cmdline(text, {"kiln.vmm=kiln-vmm"});
        (void)kiln::vmm::guest_ipv4(text);
    } catch (const kiln::vmm::VmmError&) {
    }

    try {
        const kiln::vmm::snapshot::Reader state(std::vector<uint8_t>(data, data + size), "fuzz");
        (void)state.has(kiln::vmm::snapshot::Tag::kMachine);
    } catch (const kiln::vmm::VmmError&) {
    }
    // A state file that gets past the checksum: what the reader makes of its structure.
    if (size >= 20) {
        std::vector<uint8_t> sealed(data, data + size);
        std::memcpy(sealed.data(), "KILNSNAP\x01\0\0\0", 12);
        const auto sum = static_cast<uint32_t>(crc32(0, sealed.data(), static_cast<uInt>(size - 4)));
        std::memcpy(sealed.data() + size - 4, &sum, 4);
        try {
            const kiln::vmm::snapshot::Reader state(std::move(sealed), "fuzz");
            (void)state.get(kiln::vmm::snapshot::Tag::kMachine);
        } catch (const kiln::vmm::VmmError&) {
        }
    }

    BufferMemory memory(data, size);
    auto info = std::make_unique<kiln::BootInfo>();
    kiln::parse_boot_info(memory, size > 8 ? data[0] % 64 : 0, *info);
    return 0;
}
