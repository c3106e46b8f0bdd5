#include "kvm/vcpu.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kvm/ioctls.h"
#include "util/error.h"

namespace kiln::vmm {

Vcpu::Vcpu(const Vm& vm, int index) : index_(index) {
    int fd = ::ioctl(vm.fd(), KVM_CREATE_VCPU, index);
    if (fd < 0) throw system_error("KVM_CREATE_VCPU " + std::to_string(index));
    fd_.reset(fd);
    run_size_ = static_cast<size_t>(vm.kvm().vcpu_mmap_size());
    void* p = ::mmap(nullptr, run_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (p == MAP_FAILED) throw system_error("mapping kvm_run of vCPU " + std::to_string(index));
    run_ = static_cast<kvm_run*>(p);
    stats_.reset(::ioctl(fd_.get(), KVM_GET_STATS_FD, 0));  // optional: older kernels lack it
}

Vcpu::~Vcpu() {
    if (run_ != nullptr) ::munmap(run_, run_size_);
}

void Vcpu::set_cpuid(const Kvm::CpuidTable& supported) {
    const uint32_t apic_id = static_cast<uint32_t>(index_);
    if (kvm_cpuid_entry2* leaf1 = supported.find(1)) leaf1->ebx = (leaf1->ebx & 0x00ffffff) | (apic_id << 24);
    for (uint32_t sub = 0; sub < 4; ++sub) {
        if (kvm_cpuid_entry2* topo = supported.find(0xb, sub)) topo->edx = apic_id;
        if (kvm_cpuid_entry2* topo = supported.find(0x1f, sub)) topo->edx = apic_id;
    }
    if (::ioctl(fd_.get(), ioctls::kSetCpuid2, supported.table()) != 0) throw system_error("KVM_SET_CPUID2");
}

kvm_regs Vcpu::regs() const {
    kvm_regs r{};
    if (::ioctl(fd_.get(), KVM_GET_REGS, &r) != 0) throw system_error("KVM_GET_REGS");
    return r;
}

void Vcpu::set_regs(const kvm_regs& r) {
    if (::ioctl(fd_.get(), KVM_SET_REGS, &r) != 0) throw system_error("KVM_SET_REGS");
}

kvm_sregs Vcpu::sregs() const {
    kvm_sregs s{};
    if (::ioctl(fd_.get(), KVM_GET_SREGS, &s) != 0) throw system_error("KVM_GET_SREGS");
    return s;
}

void Vcpu::set_sregs(const kvm_sregs& s) {
    if (::ioctl(fd_.get(), KVM_SET_SREGS, &s) != 0) throw system_error("KVM_SET_SREGS");
}

uint64_t Vcpu::tsc_khz() const {
    int khz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
    return khz > 0 ? static_cast<uint64_t>(khz) : 0;
}

bool Vcpu::set_tsc_khz(uint64_t khz) {
    return ::ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) == 0;
}

bool Vcpu::run() {
    if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) return true;
    if (errno == EINTR || errno == EAGAIN) {
        run_->immediate_exit = 0;
        return false;
    }
    throw system_error("KVM_RUN on vCPU " + std::to_string(index_));
}

std::string Vcpu::describe_state() const {
    kvm_regs r{};
    kvm_sregs s{};
    if (::ioctl(fd_.get(), KVM_GET_REGS, &r) != 0 || ::ioctl(fd_.get(), KVM_GET_SREGS, &s) != 0)
        return "vCPU " + std::to_string(index_) + ": registers unavailable\n";
    char text[1024];
    std::snprintf(text, sizeof(text),
                  "vCPU %d registers:\n"
                  "  rip %016llx rsp %016llx rflags %016llx\n"
                  "  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
                  "  rsi %016llx rdi %016llx rbp %016llx\n"
                  "  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
                  "  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n"
                  "  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %016llx\n"
                  "  cs %04x (base %llx, l=%d) ss %04x gdt %llx/%x idt %llx/%x\n",
                  index_, r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10,
                  r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.base,
                  s.cs.l, s.ss.selector, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
    return text;
}

std::map<std::string, uint64_t> Vcpu::statistics() const {
    std::map<std::string, uint64_t> values;
    const UniqueFd& stats = stats_;
    if (!stats.valid()) return values;
    kvm_stats_header header{};
    if (::pread(stats.get(), &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) return values;
    // Each descriptor is 16 bytes of fields and then the name. (sizeof(kvm_stats_desc) is wrong in
    // C++ with linux-libc-dev 6.1, see kvm/ioctls.h.)
    const size_t desc_size = ioctls::kStatsDescHeaderSize + header.name_size;
    std::vector<uint8_t> descs(desc_size * header.num_desc);
    if (::pread(stats.get(), descs.data(), descs.size(), header.desc_offset) != static_cast<ssize_t>(descs.size()))
        return values;
    for (uint32_t i = 0; i < header.num_desc; ++i) {
        const uint8_t* desc = descs.data() + i * desc_size;
        uint16_t size;
        uint32_t offset;
        std::memcpy(&size, desc + 6, sizeof(size));
        std::memcpy(&offset, desc + 8, sizeof(offset));
        if (size != 1) continue;  // histograms are not reported
        uint64_t value = 0;
        if (::pread(stats.get(), &value, sizeof(value), header.data_offset + offset) != sizeof(value)) continue;
        const char* name = reinterpret_cast<const char*>(desc + ioctls::kStatsDescHeaderSize);
        values[std::string(name, strnlen(name, header.name_size))] = value;
    }
    return values;
}

}  // namespace kiln::vmm

namespace kiln::vmm {
namespace {

// The fixed-size part of a saved vCPU; XSAVE bytes and MSR entries follow it.
struct FixedState {
    kvm_regs regs;
    kvm_sregs sregs;
    kvm_xcrs xcrs;
    kvm_lapic_state lapic;
    kvm_vcpu_events events;
    kvm_mp_state mp_state;
    kvm_debugregs debug;
    uint32_t xsave_size;
    uint32_t msr_count;
};

struct MsrEntry {
    uint32_t index;
    uint32_t reserved;
    uint64_t data;
};

constexpr uint32_t kMsrTsc = 0x10;

void get(int fd, unsigned long request, void* out, const char* what) {
    if (::ioctl(fd, request, out) != 0) throw system_error(std::string("snapshot: ") + what);
}

void set(int fd, unsigned long request, const void* in, const char* what) {
    if (::ioctl(fd, request, in) != 0) throw system_error(std::string("restore: ") + what);
}

std::vector<uint32_t> msr_indices(const Kvm& kvm) {
    std::vector<uint8_t> buffer(4 + 4 * 4096);
    uint32_t count = 4096;
    std::memcpy(buffer.data(), &count, 4);
    if (::ioctl(kvm.fd(), ioctls::kGetMsrIndexList, buffer.data()) != 0) throw system_error("KVM_GET_MSR_INDEX_LIST");
    std::memcpy(&count, buffer.data(), 4);
    std::vector<uint32_t> indices(count);
    std::memcpy(indices.data(), buffer.data() + 4, 4ull * count);
    return indices;
}

}  // namespace

std::vector<uint8_t> Vcpu::save_state(const Kvm& kvm) const {
    FixedState f{};
    get(fd_.get(), KVM_GET_REGS, &f.regs, "KVM_GET_REGS");
    get(fd_.get(), KVM_GET_SREGS, &f.sregs, "KVM_GET_SREGS");
    get(fd_.get(), KVM_GET_XCRS, &f.xcrs, "KVM_GET_XCRS");
    get(fd_.get(), KVM_GET_LAPIC, &f.lapic, "KVM_GET_LAPIC");
    get(fd_.get(), KVM_GET_VCPU_EVENTS, &f.events, "KVM_GET_VCPU_EVENTS");
    get(fd_.get(), KVM_GET_MP_STATE, &f.mp_state, "KVM_GET_MP_STATE");
    get(fd_.get(), KVM_GET_DEBUGREGS, &f.debug, "KVM_GET_DEBUGREGS");

    // XSAVE: KVM_GET_XSAVE2 where the state is larger than the classic 4 KiB (AVX-512).
    const int xsave2 = kvm.check_extension(KVM_CAP_XSAVE2);
    f.xsave_size = static_cast<uint32_t>(std::max<int>(xsave2, static_cast<int>(ioctls::kXsaveSize)));
    std::vector<uint8_t> xsave(f.xsave_size);
    get(fd_.get(), xsave2 > 0 ? ioctls::kGetXsave2 : ioctls::kGetXsave, xsave.data(), "KVM_GET_XSAVE");

    // Every MSR KVM lists that it can read for this vCPU; the TSC first so that restoring it
    // comes before what depends on it (the TSC deadline).
    std::vector<uint32_t> indices = msr_indices(kvm);
    std::stable_partition(indices.begin(), indices.end(), [](uint32_t i) { return i == kMsrTsc; });
    std::vector<MsrEntry> msrs;
    for (uint32_t index : indices) {
        uint8_t one[8 + sizeof(MsrEntry)] = {};
        const uint32_t n = 1;
        std::memcpy(one, &n, 4);
        std::memcpy(one + 8, &index, 4);
        if (::ioctl(fd_.get(), ioctls::kGetMsrs, one) != 1) continue;  // not readable here
        MsrEntry e;
        std::memcpy(&e, one + 8, sizeof(e));
        msrs.push_back(e);
    }
    f.msr_count = static_cast<uint32_t>(msrs.size());

    std::vector<uint8_t> out(sizeof(f) + xsave.size() + msrs.size() * sizeof(MsrEntry));
    std::memcpy(out.data(), &f, sizeof(f));
    std::memcpy(out.data() + sizeof(f), xsave.data(), xsave.size());
    std::memcpy(out.data() + sizeof(f) + xsave.size(), msrs.data(), msrs.size() * sizeof(MsrEntry));
    return out;
}

void Vcpu::restore_state(const std::vector<uint8_t>& state, uint64_t tsc_advance) {
    FixedState f;
    if (state.size() < sizeof(f)) throw VmmError("restore: vCPU state is truncated");
    std::memcpy(&f, state.data(), sizeof(f));
    if (f.xsave_size < ioctls::kXsaveSize || f.xsave_size > (1u << 20) ||
        state.size() != sizeof(f) + f.xsave_size + uint64_t{f.msr_count} * sizeof(MsrEntry))
        throw VmmError("restore: vCPU state has inconsistent sizes");
    // The order Firecracker uses, which KVM's dependencies require: MP state, registers,
    // segments, extended state, local APIC, MSRs (after the APIC base), pending events last.
    set(fd_.get(), KVM_SET_MP_STATE, &f.mp_state, "KVM_SET_MP_STATE");
    set(fd_.get(), KVM_SET_REGS, &f.regs, "KVM_SET_REGS");
    set(fd_.get(), KVM_SET_SREGS, &f.sregs, "KVM_SET_SREGS");
    set(fd_.get(), ioctls::kSetXsave, state.data() + sizeof(f), "KVM_SET_XSAVE");
    // A host without XSAVE reports no XCRs and refuses to set any.
    if (f.xcrs.nr_xcrs != 0) set(fd_.get(), KVM_SET_XCRS, &f.xcrs, "KVM_SET_XCRS");
    set(fd_.get(), KVM_SET_DEBUGREGS, &f.debug, "KVM_SET_DEBUGREGS");
    set(fd_.get(), KVM_SET_LAPIC, &f.lapic, "KVM_SET_LAPIC");
    std::vector<uint8_t> msrs(8 + uint64_t{f.msr_count} * sizeof(MsrEntry));
    std::memcpy(msrs.data(), &f.msr_count, 4);
    std::memcpy(msrs.data() + 8, state.data() + sizeof(f) + f.xsave_size, uint64_t{f.msr_count} * sizeof(MsrEntry));
    for (uint32_t i = 0; i < f.msr_count; ++i) {
        MsrEntry e;
        std::memcpy(&e, msrs.data() + 8 + i * sizeof(MsrEntry), sizeof(e));
        if (e.index == kMsrTsc) {
            e.data += tsc_advance;  // time went on while the snapshot waited
            std::memcpy(msrs.data() + 8 + i * sizeof(MsrEntry), &e, sizeof(e));
        }
    }
    const int set_count = ::ioctl(fd_.get(), ioctls::kSetMsrs, msrs.data());
    if (set_count != static_cast<int>(f.msr_count)) {
        MsrEntry failed{};
        if (set_count >= 0 && static_cast<uint32_t>(set_count) < f.msr_count)
            std::memcpy(&failed, msrs.data() + 8 + static_cast<size_t>(set_count) * sizeof(MsrEntry), sizeof(failed));
        char text[96];
        std::snprintf(text, sizeof(text), "restore: KVM_SET_MSRS stopped at MSR %#x (%d of %u set)", failed.index,
                      set_count, f.msr_count);
        throw VmmError(text);
    }
    set(fd_.get(), KVM_SET_VCPU_EVENTS, &f.events, "KVM_SET_VCPU_EVENTS");
}

}  // namespace kiln::vmm
