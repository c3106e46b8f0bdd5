#include "boot/loader.h"

#include <cstring>

#include "boot/layout.h"
#include "kiln/pvh.h"
#include "util/error.h"

namespace kiln::vmm {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kKernelHeapReserve = 2ull << 20;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

}  // namespace

uint64_t minimum_memory(const ElfImage& kernel, uint64_t initrd_size) {
    return align_up(kernel.phys_end(), kPage) + align_up(initrd_size, kPage) + kKernelHeapReserve;
}

void check_memory_fits(const ElfImage& kernel, uint64_t initrd_size, uint64_t memory_bytes) {
    const uint64_t needed = minimum_memory(kernel, initrd_size);
    if (memory_bytes >= needed) return;
    throw VmmError("too little memory: " + std::to_string(memory_bytes >> 20) + " MiB configured, the kernel" +
                   (initrd_size == 0 ? " needs" : " and initrd need") + " at least " +
                   std::to_string((needed + (1 << 20) - 1) >> 20) + " MiB");
}

uint64_t load_kernel(GuestMemory& memory, const ElfImage& kernel, const BootPayload& payload) {
    check_memory_fits(kernel, payload.initrd_mapped_at ? 0 : payload.initrd.size(), memory.size());
    if (payload.cmdline.size() > layout::kMaxCmdline)
        throw VmmError("kernel command line is " + std::to_string(payload.cmdline.size()) + " bytes, the limit is " +
                       std::to_string(layout::kMaxCmdline));

    // Fresh memfd pages are zero, so only the file part of each segment is copied: .bss is
    // already clear, and pages never touched are never faulted in.
    for (const ElfSegment& s : kernel.segments())
        if (!(payload.read_only_segments_mapped && !s.writable))
            memory.write(s.phys_addr, kernel.file().subspan(s.file_offset, s.file_size));

    abi::StartInfo info{};
    info.magic = abi::kStartInfoMagic;
    info.version = 1;

    if (!payload.initrd.empty()) {
        uint64_t initrd_at = payload.initrd_mapped_at;
        if (initrd_at == 0) {
            initrd_at = (memory.size() - payload.initrd.size()) & ~(kPage - 1);
            memory.write(initrd_at, payload.initrd);
        }
        abi::ModlistEntry module{initrd_at, payload.initrd.size(), 0, 0};
        memory.write_object(layout::kModlist, module);
        info.nr_modules = 1;
        info.modlist_paddr = layout::kModlist;
    }

    const abi::MemmapEntry memmap[] = {
        {0, layout::kLowMemoryEnd, static_cast<uint32_t>(abi::MemmapType::kReserved), 0},
        {layout::kLowMemoryEnd, memory.size() - layout::kLowMemoryEnd, static_cast<uint32_t>(abi::MemmapType::kRam), 0},
        {payload.initrd_mapped_at, align_up(payload.initrd.size(), kPage),
         static_cast<uint32_t>(abi::MemmapType::kReserved), 0},
    };
    const uint32_t entries = payload.initrd_mapped_at != 0 ? 3 : 2;
    memory.write(layout::kMemmap, std::span(reinterpret_cast<const uint8_t*>(memmap), entries * sizeof(memmap[0])));
    info.memmap_paddr = layout::kMemmap;
    info.memmap_entries = entries;

    std::string cmdline = payload.cmdline;
    memory.write(layout::kCmdline, std::span(reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1));
    info.cmdline_paddr = layout::kCmdline;

    memory.write_object(layout::kStartInfo, info);
    return layout::kStartInfo;
}

}  // namespace kiln::vmm
