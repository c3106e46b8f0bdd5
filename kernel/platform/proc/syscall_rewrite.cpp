// The fast path for the application's system calls: a site caught once by Syscall User Dispatch
// is rewritten so that it never traps again.
//
// Only the commonest site is rewritten, `mov $nr,%eax; syscall` (b8 imm32 0f 05: three quarters
// of glibc's sites, research/proc.md §9), as gVisor's systrap does, but without its table in low
// memory: the first five bytes become `jmp rel32` to a stub of this site in a page the kernel maps
// within 2 GiB of it, and the `syscall` stays in bytes 5-6, so a thread stopped just before it
// (the mov done) and a restarted call (rip - 2) still find it. The stub sets what the two
// instructions and SYSCALL would have (eax = nr, rcx = the return address) and jumps to
// proc_fast_syscall (entry.S), which switches to the kernel stack without touching the
// application's: no `call`, so no write into its red zone.
//
// The bytes are written through the direct map (the memfd's other mapping), never by making the
// application's code writable. Everything runs on one host thread, and the application is stopped
// in the kernel while its code changes, so no other thread can see a half-written site.
//
// A site whose number comes from a register (musl's inline helpers, glibc's syscall()) keeps
// trapping: correct, at ~4 us.
#include "arch/x86_64/interrupts.h"
#include "core/boot_env.h"
#include "lib/string.h"
#include "mm/address_space.h"
#include "mm/layout.h"

extern "C" char proc_fast_syscall[];  // entry.S
extern "C" void syscall_dispatch(kiln::arch::InterruptFrame* frame);

namespace kiln::proc {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSiteLength = 7;  // b8 imm32 0f 05
constexpr uint64_t kStubSize = 32;
constexpr uint64_t kReach = 0x7fff0000;  // what a rel32 reaches, with room for the stub itself

// One page of stubs.
struct StubPage {
    uint64_t va;
    uint64_t phys;
    uint32_t used;
};
constexpr size_t kMaxStubPages = 64;
constinit StubPage stub_pages[kMaxStubPages] = {};
constinit size_t stub_page_count = 0;
constinit int enabled = -1;  // -1: not read from the command line yet

bool rewriting_enabled() {
    if (enabled < 0) {
        StringView value;
        enabled = !(boot_env().cmdline.find("kiln.syscall_rewrite", value) && value == "off");
    }
    return enabled != 0;
}

// Reads or writes the application's bytes through the direct map, a page at a time.
bool access_user(uint64_t va, uint8_t* bytes, size_t length, bool write) {
    while (length > 0) {
        uint64_t phys;
        auto& space = mm::address_space();
        if (!(write ? space.writable_physical_page(va, phys) : space.physical_page(va, phys))) return false;
        const size_t in_page = kPage - va % kPage;
        const size_t n = length < in_page ? length : in_page;
        auto* mapped = static_cast<uint8_t*>(mm::phys_to_virt(phys + va % kPage));
        if (write)
            memcpy(mapped, bytes, n);
        else
            memcpy(bytes, mapped, n);
        va += n;
        bytes += n;
        length -= n;
    }
    return true;
}

bool within_reach(uint64_t from, uint64_t to) { return (from > to ? from - to : to - from) < kReach; }

// A free stub slot within reach of `site`, in a page mapped R+X for the application.
uint64_t allocate_stub(uint64_t site, uint8_t*& writable) {
    StubPage* page = nullptr;
    for (size_t i = 0; i < stub_page_count && page == nullptr; ++i)
        if (stub_pages[i].used < kPage / kStubSize && within_reach(site, stub_pages[i].va)) page = &stub_pages[i];
    if (page == nullptr) {
        if (stub_page_count == kMaxStubPages) return 0;
        auto& space = mm::address_space();
        const int64_t va = space.map_near(site, kReach - kPage, kPage, mm::kProtRead | mm::kProtExec);
        if (va < 0) return 0;
        uint64_t phys;
        if (!space.handle_fault(static_cast<uint64_t>(va), false, true) ||
            !space.physical_page(static_cast<uint64_t>(va), phys))
            return 0;
        page = &stub_pages[stub_page_count++];
        *page = {static_cast<uint64_t>(va), phys, 0};
    }
    const uint64_t offset = page->used++ * kStubSize;
    writable = static_cast<uint8_t*>(mm::phys_to_virt(page->phys + offset));
    return page->va + offset;
}

void put32(uint8_t* at, uint32_t value) { memcpy(at, &value, 4); }
void put64(uint8_t* at, uint64_t value) { memcpy(at, &value, 8); }

// mov $nr,%eax; movabs $return,%rcx; jmp *8(%rip) ... .quad proc_fast_syscall
void write_stub(uint8_t* stub, uint32_t number, uint64_t return_address) {
    stub[0] = 0xb8;
    put32(stub + 1, number);
    stub[5] = 0x48;
    stub[6] = 0xb9;
    put64(stub + 7, return_address);
    stub[15] = 0xff;  // jmp *disp32(%rip), to the address just after this instruction
    stub[16] = 0x25;
    put32(stub + 17, 0);
    put64(stub + 21, reinterpret_cast<uint64_t>(proc_fast_syscall));
    stub[29] = stub[30] = stub[31] = 0xcc;  // int3 padding
}

// The stub of an earlier site with the same number and return address: a program run again (each
// execve of it loads it where it was) gets its stubs back instead of new ones, so the stub pages
// are not used up by programs started over and over.
uint64_t existing_stub(uint32_t number, uint64_t return_address) {
    uint8_t wanted[kStubSize];
    write_stub(wanted, number, return_address);
    for (size_t i = 0; i < stub_page_count; ++i) {
        const auto* bytes = static_cast<const uint8_t*>(mm::phys_to_virt(stub_pages[i].phys));
        for (uint32_t slot = 0; slot < stub_pages[i].used; ++slot)
            if (memcmp(bytes + slot * kStubSize, wanted, kStubSize) == 0) return stub_pages[i].va + slot * kStubSize;
    }
    return 0;
}

void rewrite_site(uint64_t return_address, uint64_t number) {
    if (return_address < kSiteLength) return;
    const uint64_t site = return_address - kSiteLength;
    uint8_t bytes[kSiteLength];
    if (!access_user(site, bytes, sizeof(bytes), false)) return;
    uint32_t immediate;
    memcpy(&immediate, bytes + 1, 4);
    if (bytes[0] != 0xb8 || immediate != number || bytes[5] != 0x0f || bytes[6] != 0x05) return;
    uint64_t stub = existing_stub(immediate, return_address);
    if (stub == 0) {
        uint8_t* stub_bytes = nullptr;
        stub = allocate_stub(site, stub_bytes);
        if (stub == 0) return;
        write_stub(stub_bytes, immediate, return_address);
    }
    uint8_t jump[5] = {0xe9};
    put32(jump + 1, static_cast<uint32_t>(stub - (site + 5)));
    access_user(site, jump, sizeof(jump), true);
}

}  // namespace

}  // namespace kiln::proc

// A system call that trapped (entry.S proc_syscall_entry): rewrite its site, then run it.
extern "C" void proc_trapped_syscall(kiln::arch::InterruptFrame* frame) {
    if (kiln::proc::rewriting_enabled()) kiln::proc::rewrite_site(frame->rip, frame->rax);
    syscall_dispatch(frame);
}
