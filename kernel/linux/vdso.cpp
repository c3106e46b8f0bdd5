#include "linux/vdso.h"

#include "lib/string.h"
#include "lib/utility.h"
#include "mm/address_space.h"
#include "mm/layout.h"
#include "time/clock.h"
#include "vdso/vdso_data.h"

extern "C" const uint8_t vdso_image_start[], vdso_image_end[];  // vdso/image.S

namespace kiln::linux {
namespace {

constexpr uint64_t kPage = 4096;
constinit uint64_t image_at = 0;

// The clock's parameters never change after boot (a restored instance keeps its TSC clock), so
// they are written once; `seq` makes a reader retry if that ever changes.
void publish_clock(vdso::Data& data) {
    const time::Parameters p = time::parameters();
    data.seq = data.seq + 1;
    asm volatile("" ::: "memory");
    data.boot_tsc = p.boot_tsc;
    data.ns_mult = p.ns_mult;
    data.epoch_ns = p.epoch_ns;
    asm volatile("" ::: "memory");
    data.seq = data.seq + 1;
}

}  // namespace

bool map_vdso() {
    auto& space = mm::address_space();
    const mm::Owner owner = space.owner();
    space.set_owner(mm::kKernelOwned);
    const uint64_t size = static_cast<uint64_t>(vdso_image_end - vdso_image_start);
    const uint64_t image_pages = align_up(size, kPage);
    // The data page, then the image: vdso.lds puts `vdso_data` one page before the image.
    const int64_t at = space.map(0, kPage + image_pages, mm::kProtRead, false);
    bool ok = at >= 0;
    const uint64_t data_at = static_cast<uint64_t>(at), image = data_at + kPage;
    uint64_t data_phys = 0;
    ok = ok && space.protect(image, image_pages, mm::kProtRead | mm::kProtExec) == 0 &&
         space.attach_source(image, image + image_pages, {vdso_image_start, image, size}) == 0 &&
         space.handle_fault(data_at, false, false) && space.physical_page(data_at, data_phys);
    space.set_owner(owner);
    if (!ok) return false;
    publish_clock(*static_cast<vdso::Data*>(mm::phys_to_virt(data_phys)));
    image_at = image;
    return true;
}

uint64_t vdso_base() { return image_at; }

}  // namespace kiln::linux
