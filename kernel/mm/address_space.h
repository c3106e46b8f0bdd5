// The application's half of the single address space: its mappings (VMAs) and the page tables
// under PML4 slots 0..255.
//
// Mappings only reserve address space; pages are allocated on first touch (demand paging), so a
// glibc arena's 64 MiB PROT_NONE reservation or Go's heap reservation costs nothing.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "lib/vector.h"

namespace kiln::mm {

inline constexpr uint32_t kProtNone = 0;
inline constexpr uint32_t kProtRead = 1;
inline constexpr uint32_t kProtWrite = 2;
inline constexpr uint32_t kProtExec = 4;

inline constexpr uint64_t kUserEnd = 0x0000800000000000;  // end of the low half
inline constexpr uint64_t kStackTop = 0x00007ffffffff000;
inline constexpr uint64_t kStackSize = 8ull << 20;
inline constexpr uint64_t kMmapTop = kStackTop - kStackSize - (1ull << 30);
inline constexpr uint64_t kMmapBottom = 0x0000000100000000;

// Where a mapping's pages come from when first touched: the bytes at [va, va + size) are
// data[0..size) (an ELF segment's file bytes, in the initrd, which outlives every mapping); the
// rest of the mapping reads as zeros. Empty for anonymous memory.
struct Source {
    const uint8_t* data = nullptr;
    uint64_t va = 0;
    uint64_t size = 0;
    bool operator==(const Source&) const = default;
};

// Whose a mapping is: a program image's memory (Linux's memory map of a process), so that an
// image ending (exec, exit) unmaps its own and nobody else's. 0 is the kernel's own mappings in
// the application's half (the syscall stubs on proc), which outlive every image.
using Owner = uint32_t;
inline constexpr Owner kKernelOwned = 0;

struct Vma {
    uint64_t start;
    uint64_t end;
    uint32_t prot;
    Source source = {};
    Owner owner = kKernelOwned;
};

// The program break of one image: [start, end) grows with brk.
struct Break {
    uint64_t start = 0;
    uint64_t end = 0;
};

// An image's mappings and the contents of its written pages, taken at fork and put back when the
// child leaves its parent's memory (linux/fork.cpp explains why).
struct MemorySnapshot {
    struct SavedPage {
        uint64_t va;
        uint64_t copy;  // physical page holding the bytes
    };
    Owner owner = kKernelOwned;
    Vector<Vma> vmas;
    Vector<SavedPage> pages;  // sorted by va
    MemorySnapshot() = default;
    MemorySnapshot(const MemorySnapshot&) = delete;
    MemorySnapshot& operator=(const MemorySnapshot&) = delete;
    ~MemorySnapshot();
};

class AddressSpace {
  public:
    // Takes over the boot page tables: drops the boot identity map of the low half, and makes
    // the kernel's mappings supervisor-only where the platform allows.
    void init();

    // mmap of anonymous memory. `hint` is honoured if the range is free (or always, with
    // `fixed`, replacing what was there). Returns the address or a negative errno.
    int64_t map(uint64_t hint, uint64_t length, uint32_t prot, bool fixed);
    int64_t unmap(uint64_t start, uint64_t length);
    int64_t protect(uint64_t start, uint64_t length, uint32_t prot);
    // Frees the pages of a range, which read as zeros again (MADV_DONTNEED).
    int64_t discard(uint64_t start, uint64_t length);
    int64_t remap(uint64_t old_start, uint64_t old_length, uint64_t new_length, bool may_move, bool fixed,
                  uint64_t new_start);

    // The owner of the mappings made from now on: the running image's, told by the Linux layer
    // at each switch between images.
    void set_owner(Owner owner) { owner_ = owner; }
    Owner owner() const { return owner_; }
    // Where mmap would put `length` bytes without a hint; the address or a negative errno.
    int64_t find_free_range(uint64_t length) const { return find_free(length, 0); }
    // True if nothing but mappings of `owner` lies in [start, end).
    bool free_or_owned(uint64_t start, uint64_t end, Owner owner) const;
    // Unmaps every mapping of `owner` and frees its pages: an image is gone.
    void unmap_owned(Owner owner);

    // Program break: `set_break(b, 0)` asks for the current one.
    static void init_break(Break& b, uint64_t start);
    uint64_t set_break(Break& b, uint64_t requested);

    // Copies the mappings of `owner` and the contents of its present writable pages into
    // `snapshot`; false if memory ran out (nothing is kept then).
    bool take_snapshot(Owner owner, MemorySnapshot& snapshot);
    // Puts the mappings and page contents of `snapshot` back: mappings made since are removed,
    // removed ones come back, protections are restored, pages written since get their old bytes
    // and pages first touched since read as new again.
    void restore_snapshot(const MemorySnapshot& snapshot);

    // Demand paging: makes `address` accessible if a mapping allows the access. False means a
    // real fault (no mapping, or a forbidden access).
    bool handle_fault(uint64_t address, bool write, bool exec);

    // A fresh mapping within `reach` bytes of `address` (either side), as near as there is room:
    // for code that must be reached with a 32-bit displacement. The address or a negative errno.
    // It is the kernel's (kKernelOwned): it stays when the image near it goes.
    int64_t map_near(uint64_t address, uint64_t reach, uint64_t length, uint32_t prot);
    // The physical page behind a present page of the application; false if there is none.
    bool physical_page(uint64_t va, uint64_t& phys);
    // The same, for the kernel to write into: a page borrowed from the initrd is copied first.
    bool writable_physical_page(uint64_t va, uint64_t& phys);

    // Pages of [start, end) not yet present will be filled from `source` when first touched
    // instead of zeroed, so only the pages an application uses are ever copied. The range must
    // be mapped. Returns 0 or a negative errno.
    int64_t attach_source(uint64_t start, uint64_t end, const Source& source);

    // Makes the absent pages of [start, end) present now, in physically contiguous runs where
    // the allocator has them: on proc one host mapping per run instead of one fault per page.
    // For what is about to be written anyway (an ELF's segments, the initial stack).
    void populate(uint64_t start, uint64_t end);

    // Tells the platform again about every present page, in physically contiguous runs: a
    // restored proc instance starts in a process with none of the host's mappings.
    void remap_present_pages();

    // True if [start, start+length) is all mapped with at least `prot`.
    bool check(uint64_t start, uint64_t length, uint32_t prot) const;
    const Vector<Vma>& vmas() const { return vmas_; }
    size_t resident_pages() const { return resident_pages_; }

  private:
    uint64_t* walk(uint64_t va, bool create);
    int64_t find_free(uint64_t length, uint64_t hint) const;
    bool insert_vma(uint64_t start, uint64_t end, uint32_t prot, const Source& source = {});
    bool insert_vma(const Vma& vma);
    // Drops the page behind va, if any: it reads as new again.
    void drop_page(uint64_t va);
    // Splits the VMA that holds `at` (if any) so that one ends and the next begins there.
    bool split_at(uint64_t at);
    // A new page's bytes: the source's where it has them, zeros elsewhere.
    static void fill_page(uint64_t phys, uint64_t va, const Source& source);
    // Where a page can be the source's own bytes rather than a copy: the physical page, or 0.
    static uint64_t borrowable_page(uint64_t va, const Vma& vma);
    // Maps the run of borrowable pages from va (absent, its entry at pte) up to `end` or the end
    // of its page table; returns how many pages, 0 if va's page cannot be borrowed.
    uint64_t map_borrowed_run(uint64_t va, uint64_t* pte, const Vma& vma, uint64_t end);
    bool make_private(uint64_t va, uint64_t& pte, uint32_t prot);
    // Frees the page behind a leaf entry, unless it is borrowed.
    void release(uint64_t pte);
    static uint32_t pte_prot(uint64_t pte);
    // Removes [start, end) from the VMA list, splitting at the edges, and frees its pages.
    void remove_range(uint64_t start, uint64_t end, bool free_pages);
    void set_pte_prot(uint64_t start, uint64_t end, uint32_t prot);
    void flush(uint64_t start, uint64_t end);
    bool overlaps(uint64_t start, uint64_t end) const;

    uint64_t* pml4_ = nullptr;
    Vector<Vma> vmas_;  // sorted, non-overlapping
    Owner owner_ = kKernelOwned;
    size_t resident_pages_ = 0;
};

AddressSpace& address_space();

}  // namespace kiln::mm
