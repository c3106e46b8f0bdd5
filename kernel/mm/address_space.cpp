#include "mm/address_space.h"

#include "core/errno.h"
#include "core/panic.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "mm/layout.h"
#include "mm/page_allocator.h"
#include "platform/platform.h"

namespace kiln::mm {
namespace {

constinit AddressSpace instance;

constexpr uint64_t kPresent = 1, kWritable = 2, kUser = 4, kLarge = 0x80;
constexpr uint64_t kNoExecute = 1ull << 63;
constexpr uint64_t kKept = 1ull << 9;  // software bit: a page lives here, made absent by PROT_NONE
// Software bit: the page is the initrd's own (a read-only page of a file, used in place), not the
// page allocator's: never freed, copied before anything writes to it.
constexpr uint64_t kBorrowed = 1ull << 10;
constexpr uint64_t kAddressMask = 0x000ffffffffff000;
constexpr uint64_t kPage = 4096;
// Beyond this many pages a whole-TLB flush (one CR3 write) beats one invlpg per page; both are
// emulated on PVM (~4-7 us each).
constexpr uint64_t kFlushAllThreshold = 8;

uint64_t leaf_flags(uint32_t prot) {
    uint64_t flags = kPresent | kUser;
    if (prot & kProtWrite) flags |= kWritable;
    if (!(prot & kProtExec)) flags |= kNoExecute;
    return flags;
}

// A leaf entry for `prot` that keeps the page and whether it is borrowed.
uint64_t leaf_entry(uint64_t pte, uint32_t prot) { return (pte & (kAddressMask | kBorrowed)) | leaf_flags(prot); }

uint64_t* table_at(uint64_t entry) { return static_cast<uint64_t*>(phys_to_virt(entry & kAddressMask)); }

// Where the kernel itself lies in the application's half (proc), or an empty range.
struct KernelRange {
    uint64_t start = 0, end = 0;
    bool overlaps(uint64_t s, uint64_t e) const { return s < end && start < e; }
};
constinit KernelRange kernel_range;

bool valid_range(uint64_t start, uint64_t length) {
    return start % kPage == 0 && length > 0 && start < kUserEnd && length <= kUserEnd - start &&
           !kernel_range.overlaps(start, start + length);
}

}  // namespace

AddressSpace& address_space() { return instance; }

void AddressSpace::init() {
    // `boot_pml4` is a physical address (boot.S's .boot.data is linked at it; kernel-proc.ld
    // defines it), loaded as an absolute value, out of reach of RIP-relative code.
    uint64_t boot_pml4_phys;
    asm("movabs $boot_pml4, %0" : "=r"(boot_pml4_phys));
    pml4_ = static_cast<uint64_t*>(phys_to_virt(boot_pml4_phys));
    auto& platform = platform::current();
    pml4_[0] = 0;  // the boot identity map: the low half now belongs to the application
    if (platform.kernel_pages_supervisor_only())
        for (int slot = 256; slot < 512; ++slot) pml4_[slot] &= ~kUser;
    platform.load_page_table(virt_to_phys(pml4_));
    uint64_t start, end;
    if (platform.kernel_range_in_user_half(start, end)) kernel_range = {start, end};
}

uint64_t* AddressSpace::walk(uint64_t va, bool create) {
    uint64_t* table = pml4_;
    for (int shift = 39; shift > 12; shift -= 9) {
        uint64_t& entry = table[(va >> shift) & 511];
        if (!(entry & kPresent)) {
            if (!create) return nullptr;
            const uint64_t page = page_allocator().allocate_zeroed();
            if (page == 0) return nullptr;
            entry = page | kPresent | kWritable | kUser;
        }
        if (entry & kLarge) return nullptr;  // never in the user half
        table = table_at(entry);
    }
    return &table[(va >> 12) & 511];
}

bool AddressSpace::overlaps(uint64_t start, uint64_t end) const {
    if (kernel_range.overlaps(start, end)) return true;
    for (const Vma& v : vmas_)
        if (v.start < end && start < v.end) return true;
    return false;
}

int64_t AddressSpace::find_free(uint64_t length, uint64_t hint) const {
    if (hint != 0 && hint % kPage == 0 && hint >= kMmapBottom && hint < kUserEnd && length <= kUserEnd - hint &&
        !overlaps(hint, hint + length))
        return static_cast<int64_t>(hint);
    // Top-down below the stack, like Linux: walk the gaps from the highest mapping downwards.
    uint64_t top = kMmapTop;
    // One occupied range, taken top-down: true if the gap between its end and `top` fits.
    auto gap_above = [&](uint64_t start, uint64_t end) {
        if (start >= top) return false;
        if (end <= top && top - end >= length) return true;
        top = min(top, start);
        return false;
    };
    bool kernel_taken = kernel_range.end == 0;  // on proc, the kernel is one more occupied range
    for (size_t i = vmas_.size(); i-- > 0;) {
        const Vma& v = vmas_[i];
        if (!kernel_taken && kernel_range.start >= v.end) {
            kernel_taken = true;
            if (gap_above(kernel_range.start, kernel_range.end)) return static_cast<int64_t>(top - length);
        }
        if (gap_above(v.start, v.end)) return static_cast<int64_t>(top - length);
    }
    if (!kernel_taken && gap_above(kernel_range.start, kernel_range.end)) return static_cast<int64_t>(top - length);
    if (top >= kMmapBottom + length) return static_cast<int64_t>(top - length);
    return -ENOMEM;
}

int64_t AddressSpace::map_near(uint64_t address, uint64_t reach, uint64_t length, uint32_t prot) {
    length = align_up(length, kPage);
    constexpr uint64_t kLowest = 0x10000;  // the host's vm.mmap_min_addr
    const uint64_t low = address > kLowest + reach ? align_up(address - reach, kPage) : kLowest;
    const uint64_t high = min(kUserEnd, align_down(address + reach, kPage));
    uint64_t best = 0, best_distance = UINT64_MAX;
    // Each gap between occupied ranges, clipped to [low, high): its end nearest to `address`.
    auto consider_gap = [&](uint64_t start, uint64_t end) {
        start = max(start, low);
        end = min(end, high);
        if (end <= start || end - start < length) return;
        const uint64_t at = end <= address ? end - length : (start >= address ? start : align_down(address, kPage));
        const uint64_t candidate = min(max(at, start), end - length);
        const uint64_t distance = candidate > address ? candidate - address : address - candidate;
        if (distance < best_distance) best = candidate, best_distance = distance;
    };
    uint64_t free_from = 0;
    bool kernel_seen = kernel_range.end == 0;
    for (size_t i = 0; i <= vmas_.size(); ++i) {
        const bool last = i == vmas_.size();
        if (!kernel_seen && (last || kernel_range.start < vmas_[i].start)) {
            consider_gap(free_from, kernel_range.start);
            free_from = kernel_range.end;
            kernel_seen = true;
        }
        if (last) break;
        consider_gap(free_from, vmas_[i].start);
        free_from = max(free_from, vmas_[i].end);
    }
    consider_gap(free_from, kUserEnd);
    if (best_distance == UINT64_MAX) return -ENOMEM;
    if (!insert_vma({best, best + length, prot, {}, kKernelOwned})) return -ENOMEM;
    return static_cast<int64_t>(best);
}

bool AddressSpace::physical_page(uint64_t va, uint64_t& phys) {
    if (va >= kUserEnd) return false;
    const uint64_t* pte = walk(align_down(va, kPage), false);
    if (pte == nullptr || !(*pte & kPresent)) return false;
    phys = *pte & kAddressMask;
    return true;
}

bool AddressSpace::writable_physical_page(uint64_t va, uint64_t& phys) {
    if (va >= kUserEnd) return false;
    const uint64_t page = align_down(va, kPage);
    uint64_t* pte = walk(page, false);
    if (pte == nullptr || !(*pte & kPresent)) return false;
    if ((*pte & kBorrowed) && !make_private(page, *pte, pte_prot(*pte))) return false;
    phys = *pte & kAddressMask;
    return true;
}

uint32_t AddressSpace::pte_prot(uint64_t pte) {
    return kProtRead | ((pte & kWritable) ? kProtWrite : 0) | ((pte & kNoExecute) ? 0 : kProtExec);
}

// Replaces the borrowed page behind `pte` (present or kept) with a copy of its own.
bool AddressSpace::make_private(uint64_t va, uint64_t& pte, uint32_t prot) {
    const uint64_t phys = page_allocator().allocate();
    if (phys == 0) return false;
    memcpy(phys_to_virt(phys), phys_to_virt(pte & kAddressMask), kPage);
    pte = phys | leaf_flags(prot);
    ++resident_pages_;
    platform::current().user_pages_mapped(va, phys, kPage, prot);
    platform::current().flush_tlb_page(va);
    return true;
}

void AddressSpace::release(uint64_t pte) {
    if (pte & kBorrowed) return;
    page_allocator().free(pte & kAddressMask);
    --resident_pages_;
}

bool AddressSpace::insert_vma(uint64_t start, uint64_t end, uint32_t prot, const Source& source) {
    return insert_vma({start, end, prot, source, owner_});
}

bool AddressSpace::insert_vma(const Vma& vma) {
    const uint64_t start = vma.start, end = vma.end;
    size_t at = 0;
    while (at < vmas_.size() && vmas_[at].start < start) ++at;
    // Merge with equal neighbours so that a stream of small mmaps stays one VMA.
    auto same = [&](const Vma& v) { return v.prot == vma.prot && v.source == vma.source && v.owner == vma.owner; };
    if (at > 0 && vmas_[at - 1].end == start && same(vmas_[at - 1])) {
        vmas_[at - 1].end = end;
        if (at < vmas_.size() && vmas_[at].start == end && same(vmas_[at])) {
            vmas_[at - 1].end = vmas_[at].end;
            vmas_.erase(at);
        }
        return true;
    }
    if (at < vmas_.size() && vmas_[at].start == end && same(vmas_[at])) {
        vmas_[at].start = start;
        return true;
    }
    return vmas_.insert(at, vma);
}

bool AddressSpace::split_at(uint64_t at) {
    for (size_t i = 0; i < vmas_.size(); ++i) {
        Vma v = vmas_[i];
        if (v.start < at && at < v.end) {
            vmas_[i].end = at;
            v.start = at;
            return vmas_.insert(i + 1, v);
        }
    }
    return true;
}

int64_t AddressSpace::attach_source(uint64_t start, uint64_t end, const Source& source) {
    if (!valid_range(start, end - start) || !check(start, end - start, 0)) return -EINVAL;
    if (!split_at(start) || !split_at(end)) return -ENOMEM;
    for (Vma& v : vmas_)
        if (v.start >= start && v.end <= end) v.source = source;
    return 0;
}

void AddressSpace::fill_page(uint64_t phys, uint64_t va, const Source& source) {
    auto* page = static_cast<uint8_t*>(phys_to_virt(phys));
    const uint64_t from = max(va, source.va), to = min(va + kPage, source.va + source.size);
    if (source.data == nullptr || from >= to) {
        memset(page, 0, kPage);
        return;
    }
    memset(page, 0, from - va);
    memcpy(page + (from - va), source.data + (from - source.va), to - from);
    memset(page + (to - va), 0, va + kPage - to);
}

// A read-only page that lies whole within the file's bytes, page-aligned in the initrd (as
// kiln's initrds lay out their files), is those bytes: no copy, and on proc the host maps the
// initrd file's page itself, shared through the page cache by every instance. The application can
// never write it (its VMA is not writable, and a change of protection or a write by the kernel
// copies it first).
uint64_t AddressSpace::borrowable_page(uint64_t va, const Vma& vma) {
    const Source& s = vma.source;
    if (s.data == nullptr || (vma.prot & kProtWrite) || va < s.va || va + kPage > s.va + s.size) return 0;
    const auto* bytes = s.data + (va - s.va);
    const auto address = reinterpret_cast<uint64_t>(bytes);
    if (address % kPage != 0 || address < kDirectMapBase || address - kDirectMapBase >= kDirectMapSize) return 0;
    return virt_to_phys(bytes);
}

void AddressSpace::remove_range(uint64_t start, uint64_t end, bool free_pages) {
    for (size_t i = 0; i < vmas_.size();) {
        Vma v = vmas_[i];
        if (v.end <= start || v.start >= end) {
            ++i;
            continue;
        }
        if (v.start < start && v.end > end) {  // a hole in the middle: split in two
            vmas_[i].end = start;
            v.start = end;
            if (!vmas_.insert(i + 1, v)) panic("address space: out of memory splitting a VMA");
            break;
        }
        if (v.start < start) {
            vmas_[i].end = start;
            ++i;
        } else if (v.end > end) {
            vmas_[i].start = end;
            ++i;
        } else {
            vmas_.erase(i);
        }
    }
    if (!free_pages) return;
    for (uint64_t va = start; va < end; va += kPage) {
        uint64_t* pte = walk(va, false);
        if (pte == nullptr) {
            // Skip the rest of an absent page table quickly (big PROT_NONE reservations).
            va = align_up(va + 1, 2ull << 20) - kPage;
            continue;
        }
        if (*pte & (kPresent | kKept)) release(*pte);
        *pte = 0;
    }
    platform::current().user_range_unmapped(start, end);
    flush(start, end);
}

void AddressSpace::flush(uint64_t start, uint64_t end) {
    auto& platform = platform::current();
    if ((end - start) / kPage > kFlushAllThreshold) {
        platform.load_page_table(virt_to_phys(pml4_));
        return;
    }
    for (uint64_t va = start; va < end; va += kPage) platform.flush_tlb_page(va);
}

void AddressSpace::set_pte_prot(uint64_t start, uint64_t end, uint32_t prot) {
    bool changed = false;
    // The host (proc) is told once per run of pages that have one: a host call per page would
    // cost a TLB flush per page.
    uint64_t run_start = 0;
    auto end_run = [&](uint64_t at) {
        if (run_start != 0) platform::current().user_pages_protected(run_start, at, prot);
        run_start = 0;
    };
    for (uint64_t va = start; va < end; va += kPage) {
        uint64_t* pte = walk(va, false);
        if (pte == nullptr) {
            end_run(va);
            va = align_up(va + 1, 2ull << 20) - kPage;
            continue;
        }
        if (!(*pte & (kPresent | kKept))) {
            end_run(va);
            continue;
        }
        if (prot == 0) {  // PROT_NONE keeps the page, unreachable
            *pte = (*pte & ~kPresent) | kKept;
        } else if ((prot & kProtWrite) && (*pte & kBorrowed)) {
            // The initrd's page stays read-only until the application writes to it (then it
            // becomes a copy of its own: handle_fault), so a page never written is never copied
            // and mprotect never needs memory for it.
            end_run(va);
            const uint32_t read_only = (prot & ~kProtWrite) != 0 ? prot & ~kProtWrite : kProtRead;
            *pte = leaf_entry(*pte, read_only);
            platform::current().user_pages_protected(va, va + kPage, read_only);
            changed = true;
            continue;
        } else {
            *pte = leaf_entry(*pte, prot);
        }
        if (run_start == 0) run_start = va;
        changed = true;
    }
    end_run(min(end, kUserEnd));
    if (changed) flush(start, end);
}

int64_t AddressSpace::map(uint64_t hint, uint64_t length, uint32_t prot, bool fixed) {
    length = align_up(length, kPage);
    if (length == 0 || length > kUserEnd) return -EINVAL;
    int64_t start;
    if (fixed) {
        if (!valid_range(hint, length)) return -EINVAL;
        remove_range(hint, hint + length, true);
        start = static_cast<int64_t>(hint);
    } else {
        start = find_free(length, align_down(hint, kPage));
        if (start < 0) return start;
    }
    const uint64_t s = static_cast<uint64_t>(start);
    if (!insert_vma(s, s + length, prot)) return -ENOMEM;
    return start;
}

int64_t AddressSpace::unmap(uint64_t start, uint64_t length) {
    length = align_up(length, kPage);
    if (!valid_range(start, length)) return -EINVAL;
    remove_range(start, start + length, true);
    return 0;
}

int64_t AddressSpace::protect(uint64_t start, uint64_t length, uint32_t prot) {
    length = align_up(length, kPage);
    if (!valid_range(start, length)) return -EINVAL;
    const uint64_t end = start + length;
    // Every page of the range must be mapped (Linux: ENOMEM otherwise).
    uint64_t covered = start;
    for (const Vma& v : vmas_)
        if (v.start <= covered && v.end > covered) covered = v.end;
    if (covered < end) return -ENOMEM;
    // The VMAs of the range get the new protection and keep their sources.
    if (!split_at(start) || !split_at(end)) return -ENOMEM;
    for (Vma& v : vmas_)
        if (v.start >= start && v.end <= end) v.prot = prot;
    for (size_t i = 1; i < vmas_.size();) {  // equal neighbours become one again
        Vma& a = vmas_[i - 1];
        const Vma& b = vmas_[i];
        if (a.end == b.start && a.prot == b.prot && a.source == b.source && a.owner == b.owner) {
            a.end = b.end;
            vmas_.erase(i);
        } else {
            ++i;
        }
    }
    set_pte_prot(start, end, prot);
    // A PROT_NONE page made accessible again comes back through the fault handler.
    return 0;
}

int64_t AddressSpace::discard(uint64_t start, uint64_t length) {
    length = align_up(length, kPage);
    if (!valid_range(start, length)) return -EINVAL;
    for (uint64_t va = start; va < start + length; va += kPage) {
        uint64_t* pte = walk(va, false);
        if (pte == nullptr) {
            va = align_up(va + 1, 2ull << 20) - kPage;
            continue;
        }
        if (*pte & (kPresent | kKept)) release(*pte);
        *pte = 0;
    }
    platform::current().user_range_unmapped(start, start + length);
    flush(start, start + length);
    return 0;
}

int64_t AddressSpace::remap(uint64_t old_start, uint64_t old_length, uint64_t new_length, bool may_move, bool fixed,
                            uint64_t new_start) {
    old_length = align_up(old_length, kPage);
    new_length = align_up(new_length, kPage);
    if (!valid_range(old_start, old_length) || new_length == 0) return -EINVAL;
    const Vma* vma = nullptr;
    for (const Vma& v : vmas_)
        if (v.start <= old_start && v.end >= old_start + old_length) vma = &v;
    if (vma == nullptr) return -EFAULT;
    const uint32_t prot = vma->prot;
    const Source source = vma->source;
    const Owner owner = vma->owner;
    if (!fixed && new_length <= old_length) {
        if (new_length < old_length) remove_range(old_start + new_length, old_start + old_length, true);
        return static_cast<int64_t>(old_start);
    }
    const uint64_t old_end = old_start + old_length;
    if (!fixed && !overlaps(old_end, old_start + new_length) && old_start + new_length <= kUserEnd) {
        remove_range(old_start, old_end, false);
        if (!insert_vma({old_start, old_start + new_length, prot, source, owner})) return -ENOMEM;
        return static_cast<int64_t>(old_start);
    }
    if (!may_move) return -ENOMEM;
    int64_t target = fixed ? static_cast<int64_t>(new_start) : find_free(new_length, 0);
    if (target < 0) return target;
    const uint64_t t = static_cast<uint64_t>(target);
    if (fixed) {
        if (!valid_range(t, new_length) || (t < old_end && old_start < t + new_length)) return -EINVAL;
        remove_range(t, t + new_length, true);
    }
    Source moved_source = source;  // the same bytes at the same offsets of the moved range
    if (source.data) moved_source.va = source.va + t - old_start;
    if (!insert_vma({t, t + new_length, prot, moved_source, owner})) return -ENOMEM;
    // Move the pages themselves: relink each present PTE, no copying.
    const uint64_t moved = min(old_length, new_length);
    for (uint64_t off = 0; off < moved; off += kPage) {
        uint64_t* from = walk(old_start + off, false);
        if (from == nullptr || *from == 0) continue;
        uint64_t* to = walk(t + off, true);
        if (to == nullptr) return -ENOMEM;
        *to = *from;
        *from = 0;
        if (*to & kPresent)
            platform::current().user_pages_mapped(t + off, *to & kAddressMask, kPage, prot);
        else  // kept through PROT_NONE: the host maps it when it is made accessible again
            platform::current().user_range_unmapped(t + off, t + off + kPage);
    }
    remove_range(old_start, old_end, true);  // pages already moved out; frees any beyond `moved`
    flush(old_start, old_end);
    return target;
}

void AddressSpace::init_break(Break& b, uint64_t start) { b.start = b.end = align_up(start, kPage); }

uint64_t AddressSpace::set_break(Break& b, uint64_t requested) {
    if (requested == 0 || requested < b.start) return b.end;
    const uint64_t new_end = align_up(requested, kPage);
    if (new_end > b.end) {
        if (overlaps(b.end, new_end)) return b.end;
        if (!insert_vma(b.end, new_end, kProtRead | kProtWrite)) return b.end;
    } else if (new_end < b.end) {
        remove_range(new_end, b.end, true);
    }
    b.end = new_end;
    return requested;
}

bool AddressSpace::free_or_owned(uint64_t start, uint64_t end, Owner owner) const {
    if (kernel_range.overlaps(start, end)) return false;
    for (const Vma& v : vmas_)
        if (v.start < end && start < v.end && v.owner != owner) return false;
    return true;
}

void AddressSpace::unmap_owned(Owner owner) {
    for (size_t i = vmas_.size(); i-- > 0;) {
        if (i < vmas_.size() && vmas_[i].owner == owner) remove_range(vmas_[i].start, vmas_[i].end, true);
    }
}

void AddressSpace::drop_page(uint64_t va) {
    uint64_t* pte = walk(va, false);
    if (pte == nullptr || !(*pte & (kPresent | kKept))) return;
    release(*pte);
    *pte = 0;
    platform::current().user_range_unmapped(va, va + kPage);
    platform::current().flush_tlb_page(va);
}

MemorySnapshot::~MemorySnapshot() {
    for (const SavedPage& p : pages) page_allocator().free(p.copy);
}

bool AddressSpace::take_snapshot(Owner owner, MemorySnapshot& snapshot) {
    snapshot.owner = owner;
    for (const Vma& v : vmas_) {
        if (v.owner != owner) continue;
        if (!snapshot.vmas.push_back(v)) return false;
        if (!(v.prot & kProtWrite)) continue;
        for (uint64_t va = v.start; va < v.end; va += kPage) {
            const uint64_t* pte = walk(va, false);
            if (pte == nullptr) {
                va = align_up(va + 1, 2ull << 20) - kPage;
                continue;
            }
            if (!(*pte & kPresent)) continue;
            const uint64_t copy = page_allocator().allocate();
            if (copy == 0) return false;
            memcpy(phys_to_virt(copy), phys_to_virt(*pte & kAddressMask), kPage);
            if (!snapshot.pages.push_back({va, copy})) {
                page_allocator().free(copy);
                return false;
            }
        }
    }
    return true;
}

void AddressSpace::restore_snapshot(const MemorySnapshot& snapshot) {
    const auto& saved = snapshot.vmas;  // in order of address, as vmas_ was
    // Mappings made since: gone, range by range (a saved mapping may have grown or shrunk).
    for (size_t i = vmas_.size(); i-- > 0;) {
        if (i >= vmas_.size() || vmas_[i].owner != snapshot.owner) continue;
        const Vma v = vmas_[i];
        uint64_t at = v.start;  // [v.start, at) is settled
        for (const Vma& s : saved) {
            if (s.end <= at) continue;
            if (s.start >= v.end) break;
            if (s.start > at) remove_range(at, s.start, true);
            at = s.end;
            if (at >= v.end) break;
        }
        if (at < v.end) remove_range(at, v.end, true);
    }
    for (const Vma& s : saved) {
        // Holes (unmapped since) come back; what is there gets its old protection.
        for (uint64_t va = s.start; va < s.end;) {
            const Vma* here = nullptr;
            uint64_t next_start = s.end;  // where the next mapping above va begins, within s
            for (const Vma& v : vmas_) {
                if (v.start <= va && va < v.end) here = &v;
                if (v.start > va && v.start < next_start) next_start = v.start;
            }
            if (here == nullptr) {
                Vma piece = s;
                piece.start = va;
                piece.end = next_start;
                if (!insert_vma(piece)) panic("fork: out of memory putting the parent's mappings back");
                va = next_start;
                continue;
            }
            const uint64_t end = min(here->end, s.end);
            if (here->prot != s.prot) (void)protect(va, end - va, s.prot);
            va = end;
        }
        if (!(s.prot & kProtWrite)) continue;
        // Pages: the saved bytes where there were some, new again where there were none.
        const MemorySnapshot::SavedPage* next = snapshot.pages.begin();
        while (next != snapshot.pages.end() && next->va < s.start) ++next;
        for (uint64_t va = s.start; va < s.end; va += kPage) {
            const bool had_page = next != snapshot.pages.end() && next->va == va;
            uint64_t phys;
            if (had_page) {
                if ((physical_page(va, phys) || handle_fault(va, true, false)) && writable_physical_page(va, phys))
                    memcpy(phys_to_virt(phys), phys_to_virt(next->copy), kPage);
                else
                    panic("fork: out of memory putting the parent's pages back");
                ++next;
                continue;
            }
            const uint64_t* pte = walk(va, false);
            if (pte == nullptr) {  // no page table: nothing present up to the next saved page
                va = align_up(va + 1, 2ull << 20) - kPage;
                if (next != snapshot.pages.end() && next->va <= va) va = next->va - kPage;
                continue;
            }
            if (*pte & (kPresent | kKept)) drop_page(va);
        }
    }
}

bool AddressSpace::handle_fault(uint64_t address, bool write, bool exec) {
    if (address >= kUserEnd || kernel_range.overlaps(address, address + 1)) return false;
    const uint64_t page = align_down(address, kPage);
    const Vma* vma = nullptr;
    for (const Vma& v : vmas_) {
        if (v.start <= page && page < v.end) {
            vma = &v;
            break;
        }
    }
    if (vma == nullptr) return false;
    if ((write && !(vma->prot & kProtWrite)) || (exec && !(vma->prot & kProtExec)) || vma->prot == 0) return false;
    uint64_t* pte = walk(page, true);
    if (pte == nullptr) return false;
    auto& platform = platform::current();
    if (*pte & kPresent) {
        // The first write to a borrowed page of a writable mapping: a copy of its own now.
        if (write && (*pte & kBorrowed)) return make_private(page, *pte, vma->prot);
        // Present and permitted: a stale TLB entry after a protection change.
        platform.flush_tlb_page(page);
        return true;
    }
    if (*pte & kKept) {  // a page kept through PROT_NONE
        if ((vma->prot & kProtWrite) && (*pte & kBorrowed)) return make_private(page, *pte, vma->prot);
        *pte = leaf_entry(*pte, vma->prot);
        platform.user_pages_mapped(page, *pte & kAddressMask, kPage, vma->prot);
        return true;
    }
    if (vma->source.data && borrowable_page(page, *vma)) {
        // The file's own bytes in the initrd: every such page of the mapping costs nothing to
        // map (no copy; on proc the host maps them lazily from its page cache), so all of them
        // are mapped now and the application takes no further fault of ours on them.
        for (uint64_t va = vma->start; va < vma->end;) {
            uint64_t* entry = walk(va, true);
            if (entry == nullptr) return false;
            const uint64_t pages = (*entry & (kPresent | kKept)) ? 0 : map_borrowed_run(va, entry, *vma, vma->end);
            va += max<uint64_t>(pages, 1) * kPage;
        }
        return (*walk(page, false) & kPresent) != 0;
    }
    if (vma->source.data) {
        // A file's pages around this one are likely next (code runs on): fill a few at once,
        // as Linux's fault-around does for file mappings.
        constexpr uint64_t kAround = 8 * kPage;
        populate(max(vma->start, align_down(page, kAround)), min(vma->end, align_down(page, kAround) + kAround));
        return (*walk(page, false) & kPresent) != 0;
    }
    // Anonymous memory a page at a time, as Linux (mincore shows it).
    const uint64_t phys = page_allocator().allocate_zeroed();
    if (phys == 0) return false;
    *pte = phys | leaf_flags(vma->prot);
    ++resident_pages_;
    platform.user_pages_mapped(page, phys, kPage, vma->prot);
    return true;
}

void AddressSpace::remap_present_pages() {
    struct Run {
        uint64_t va = 0, phys = 0, pages = 0, kind = 0;  // kind: the entry's protection and kBorrowed bits
    } run;
    auto& platform = platform::current();
    const auto finish_run = [&] {
        if (run.pages != 0) platform.user_pages_mapped(run.va, run.phys, run.pages * kPage, pte_prot(run.kind));
        run.pages = 0;
    };
    for (const Vma& vma : vmas_) {
        for (uint64_t va = vma.start; va < vma.end;) {
            // Down the tables, skipping at once whatever an absent upper entry covers.
            const uint64_t* table = pml4_;
            uint64_t absent_span = 0;
            for (int shift = 39; shift > 12 && absent_span == 0; shift -= 9) {
                const uint64_t entry = table[(va >> shift) & 511];
                if (!(entry & kPresent) || (entry & kLarge))
                    absent_span = 1ull << shift;
                else
                    table = table_at(entry);
            }
            const uint64_t pte = absent_span != 0 ? 0 : table[(va >> 12) & 511];
            if (!(pte & kPresent)) {
                finish_run();
                va = absent_span != 0 ? align_down(va, absent_span) + absent_span : va + kPage;
                continue;
            }
            const uint64_t phys = pte & kAddressMask, kind = pte & (kWritable | kNoExecute | kBorrowed);
            if (run.pages != 0 && (phys != run.phys + run.pages * kPage || kind != run.kind)) finish_run();
            if (run.pages == 0) run = {va, phys, 0, kind};
            ++run.pages;
            va += kPage;
        }
        finish_run();
    }
}

uint64_t AddressSpace::map_borrowed_run(uint64_t va, uint64_t* pte, const Vma& vma, uint64_t end) {
    const uint64_t borrowed = borrowable_page(va, vma);
    if (borrowed == 0) return 0;
    // The run of pages that are the file's own, contiguous in the initrd, in this page table.
    uint64_t run = 1;
    while (va + run * kPage < min(end, vma.end) && ((va >> 12) + run) % 512 != 0 && !(pte[run] & (kPresent | kKept)) &&
           borrowable_page(va + run * kPage, vma) == borrowed + run * kPage)
        ++run;
    for (uint64_t i = 0; i < run; ++i) pte[i] = (borrowed + i * kPage) | kBorrowed | leaf_flags(vma.prot);
    platform::current().user_pages_mapped(va, borrowed, run * kPage, vma.prot);
    return run;
}

void AddressSpace::populate(uint64_t start, uint64_t end) {
    constexpr uint64_t kMaxRun = 16;
    auto& platform = platform::current();
    for (uint64_t va = align_down(start, kPage); va < end;) {
        const Vma* vma = nullptr;
        for (const Vma& v : vmas_)
            if (v.start <= va && va < v.end) vma = &v;
        uint64_t* pte = vma != nullptr && vma->prot != 0 ? walk(va, true) : nullptr;
        if (pte == nullptr || (*pte & (kPresent | kKept))) {
            va += kPage;
            continue;
        }
        if (const uint64_t pages = map_borrowed_run(va, pte, *vma, end)) {
            va += pages * kPage;
            continue;
        }
        // The run of absent pages from here, in this VMA and this page table (512 entries).
        uint64_t run = 1;
        while (run < kMaxRun && va + run * kPage < min(end, vma->end) && ((va >> 12) + run) % 512 != 0 &&
               !(pte[run] & (kPresent | kKept)))
            ++run;
        uint64_t phys = page_allocator().allocate_zeroed(run);
        if (phys == 0) {
            run = 1;
            phys = page_allocator().allocate_zeroed();
            if (phys == 0) return;  // out of memory: what is left faults in, or fails, later
        }
        for (uint64_t i = 0; i < run; ++i) {
            if (vma->source.data) fill_page(phys + i * kPage, va + i * kPage, vma->source);
            pte[i] = (phys + i * kPage) | leaf_flags(vma->prot);
        }
        resident_pages_ += run;
        platform.user_pages_mapped(va, phys, run * kPage, vma->prot);
        va += run * kPage;
    }
}

bool AddressSpace::check(uint64_t start, uint64_t length, uint32_t prot) const {
    if (start >= kUserEnd || length > kUserEnd - start) return false;
    uint64_t at = start;
    const uint64_t end = start + length;
    for (const Vma& v : vmas_) {
        if (v.end <= at) continue;
        if (v.start > at || (v.prot & prot) != prot) return false;
        at = v.end;
        if (at >= end) return true;
    }
    return at >= end;
}

}  // namespace kiln::mm
