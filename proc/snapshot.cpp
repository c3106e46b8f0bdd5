// kiln-proc's snapshots: a parked instance to a directory, and a new instance from one.
//
// The directory is kiln-vmm's (vmm/snapshot/snapshot_files.h): `memory` holds the instance's
// memory, the kernel's read-only ranges included, so a snapshot needs no kernel file to restore;
// `state` holds a ProcRecord, those ranges and the listeners; `initrd` the initrd. The kernel
// parked itself before (control.cpp): its registers are in the memory, and so is everything
// else of it, which is what makes a process restorable from a file without the host's help.
//
// A restore copies `memory` into a fresh memfd (the application's pages must be shared with the
// kernel's own view of them, which a private mapping of the file cannot give) and maps the
// read-only ranges from the file itself, shared through the page cache. The kernel's clock is
// the TSC, which carries over only within one boot of one host: a snapshot records both and is
// refused elsewhere, with a message, never resumed with a clock gone backwards.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "boot/layout.h"
#include "host_clock.h"
#include "snapshot/snapshot_files.h"
#include "snapshot/state_file.h"
#include "tender.h"
#include "util/error.h"

namespace kiln::proc {

using vmm::system_error;
using vmm::VmmError;
using namespace vmm::snapshot;

namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kBootIdSize = 36;  // a UUID, as /proc/sys/kernel/random/boot_id prints it

struct ProcRecord {
    uint64_t memory_bytes;
    uint64_t tsc_khz;
    uint64_t realtime_ns;
    uint64_t initrd_size;  // 0: no initrd, or one copied into the memory
    uint64_t entry;        // the kernel's proc entry point
    uint8_t mac[6];
    uint8_t has_net;
    uint8_t pad;
    char boot_id[kBootIdSize + 4];
};

struct VolumeRecord {
    uint64_t bytes;
    uint32_t read_only;
    uint32_t pad;
};

const std::string& host_boot_id() {
    static const std::string id = [] {  // the host's boot's, read once
        std::ifstream in("/proc/sys/kernel/random/boot_id");
        std::string line;
        std::getline(in, line);
        return line.substr(0, kBootIdSize);
    }();
    return id;
}

// `from` (the snapshot's memory file) into the memfd, extent by extent, in the host kernel.
void copy_memory(int from, int to, uint64_t size, const std::string& path) {
    off_t at = ::lseek(from, 0, SEEK_DATA);
    while (at >= 0 && static_cast<uint64_t>(at) < size) {
        off_t end = ::lseek(from, at, SEEK_HOLE);
        if (end < 0 || static_cast<uint64_t>(end) > size) end = static_cast<off_t>(size);
        // sendfile, not copy_file_range, which refuses to cross file systems (to the memfd's).
        off_t in = at;
        if (::lseek(to, at, SEEK_SET) != at) throw system_error("restore: seeking the instance's memory");
        while (in < end) {
            const ssize_t n = ::sendfile(to, from, &in, static_cast<size_t>(end - in));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw system_error("restore: copying " + path);
        }
        at = ::lseek(from, end, SEEK_DATA);
    }
    if (at < 0 && errno != ENXIO) throw system_error("restore: reading " + path);
}

}  // namespace

uint64_t Tender::snapshot(const std::string& dir) {
    const auto started = std::chrono::steady_clock::now();
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) throw VmmError("snapshot: cannot create " + dir + ": " + error.message());

    ProcRecord record{};
    record.memory_bytes = memory_->size();
    record.tsc_khz = tsc_khz_;
    record.realtime_ns = realtime_ns();
    record.initrd_size = initrd_mapped_ ? initrd_file_.bytes().size() : 0;
    record.entry = entry_;
    std::memcpy(record.mac, mac_.data(), sizeof(record.mac));
    record.has_net = tap_.has_value();
    const std::string boot_id = host_boot_id();
    std::memcpy(record.boot_id, boot_id.data(), std::min(boot_id.size(), kBootIdSize));
    Writer w;
    w.add_object(Tag::kProcMachine, 0, record);
    w.add(Tag::kProcReadOnly, 0, read_only_.data(), read_only_.size() * sizeof(ReadOnlyRange));
    add_listeners(w, listeners_);
    // The volumes' sizes and modes: the kernel's block devices know them, so a restore must be
    // given the same files again (Tag::kProcVolumes: one VolumeRecord each, in order).
    std::vector<VolumeRecord> volumes;
    for (const auto& v : volumes_) volumes.push_back({v.bytes, v.read_only, 0});
    if (!volumes.empty()) w.add(Tag::kProcVolumes, 0, volumes.data(), volumes.size() * sizeof(VolumeRecord));

    // The memory as the kernel sees it: the memfd, with the read-only ranges (holes in the memfd,
    // mapped from their file in the instance) written over it.
    const std::string memory_path = dir + "/memory.tmp";
    write_memory(*memory_, memory_path);
    {
        UniqueFd out(::open(memory_path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!out.valid()) throw system_error("snapshot: " + memory_path);
        for (const ReadOnlyRange& range : read_only_) {
            const auto bytes = read_only_source_.bytes();
            if (range.file_offset + range.length > bytes.size())
                throw VmmError("snapshot: a read-only range lies outside its file");
            if (::pwrite(out.get(), bytes.data() + range.file_offset, range.length, static_cast<off_t>(range.phys)) !=
                static_cast<ssize_t>(range.length))
                throw system_error("snapshot: writing " + memory_path);
        }
        if (::fsync(out.get()) != 0) throw system_error("snapshot: fsync " + memory_path);
    }
    write_file(dir + "/state.tmp", w.finish());
    if (record.initrd_size != 0) keep_initrd(options_.initrd, dir);
    std::filesystem::rename(memory_path, dir + "/memory");
    std::filesystem::rename(dir + "/state.tmp", dir + "/state");
    ++snapshots_;
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count());
}

void Tender::load_snapshot(const std::string& dir) {
    if (!options_.kernel.empty()) throw VmmError("--restore: the snapshot holds its kernel; --kernel is not taken");
    if (!options_.initrd.empty()) throw VmmError("--restore: the snapshot holds its initrd; --initrd is not taken");
    const Reader state(read_file(dir + "/state"), dir + "/state");
    if (!state.has(Tag::kProcMachine) && state.has(Tag::kMachine))
        state.fail("was taken by kiln-vmm (a VM, not a process); restore it with kiln-vmm");
    const auto record = state.get_object<ProcRecord>(Tag::kProcMachine);
    if (record.memory_bytes == 0 || record.memory_bytes > vmm::layout::kMaxMemory || record.memory_bytes % kPage)
        state.fail("has a bad memory size");
    // The boot id below is what proves the TSC carried over; the rate is a second look. Each
    // tender measures it, and a measurement disturbed on a busy host may differ a little from the
    // snapshot's: within 2% it is the same clock, and the kernel keeps the snapshot's figure.
    const HostClock clock = read_host_clock();
    if (std::llabs(static_cast<long long>(record.tsc_khz) - static_cast<long long>(clock.tsc_khz)) * 50 >
        static_cast<long long>(record.tsc_khz))
        state.fail("was taken where the TSC ran at " + std::to_string(record.tsc_khz) + " kHz; here it runs at " +
                   std::to_string(clock.tsc_khz) + " kHz");
    if (std::string(record.boot_id, strnlen(record.boot_id, sizeof(record.boot_id))) != host_boot_id())
        state.fail(
            "was taken on another host or before this one last booted: the kernel's clock (the TSC) "
            "does not carry over");
    tsc_khz_ = record.tsc_khz;
    entry_ = record.entry;
    options_.memory_bytes = record.memory_bytes;

    const auto& ranges = state.get(Tag::kProcReadOnly);
    if (ranges.size() % sizeof(ReadOnlyRange) != 0) state.fail("bad read-only ranges");
    read_only_.resize(ranges.size() / sizeof(ReadOnlyRange));
    std::memcpy(read_only_.data(), ranges.data(), ranges.size());
    for (ReadOnlyRange& range : read_only_) {
        if (range.phys % kPage || range.length % kPage || range.length == 0 || range.phys > record.memory_bytes ||
            range.length > record.memory_bytes - range.phys ||
            (range.prot & ~static_cast<uint32_t>(PROT_READ | PROT_EXEC)) != 0)
            state.fail("bad read-only range");
        range.file_offset = range.phys;  // they come from the memory file now
    }
    restored_listeners_ = read_listeners(state);

    const std::string memory_path = dir + "/memory";
    read_only_fd_.reset(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!read_only_fd_.valid()) throw system_error("restore: " + memory_path);
    struct stat st {};
    if (::fstat(read_only_fd_.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != record.memory_bytes)
        throw VmmError("restore: " + memory_path + " is not the " + std::to_string(record.memory_bytes) +
                       " bytes its state says (truncated?)");
    read_only_source_ = vmm::MappedFile(memory_path, "snapshot memory");
    memory_ = std::make_unique<vmm::GuestMemory>(record.memory_bytes);
    copy_memory(read_only_fd_.get(), memory_->fd(), record.memory_bytes, memory_path);

    if (record.initrd_size != 0) {
        options_.initrd = dir + "/initrd";
        initrd_file_ = vmm::MappedFile(options_.initrd, "snapshot initrd");
        if (initrd_file_.bytes().size() != record.initrd_size) state.fail("its initrd changed size");
        initrd_fd_.reset(::open(options_.initrd.c_str(), O_RDONLY | O_CLOEXEC));
        if (!initrd_fd_.valid()) throw system_error("restore: " + options_.initrd);
        initrd_mapped_ = true;
    }
    std::memcpy(mac_.data(), record.mac, sizeof(record.mac));
    if (!options_.nets.empty()) {
        if (!record.has_net) throw VmmError("--net: the snapshot's instance had no network card to attach it to");
        open_tap(options_.nets.front());
    }
    std::vector<VolumeRecord> volumes;
    if (state.has(Tag::kProcVolumes)) {
        const auto& bytes = state.get(Tag::kProcVolumes);
        if (bytes.size() % sizeof(VolumeRecord) != 0 || bytes.size() / sizeof(VolumeRecord) > abi::kProcMaxVolumes)
            state.fail("has a bad volume list");
        volumes.resize(bytes.size() / sizeof(VolumeRecord));
        std::memcpy(volumes.data(), bytes.data(), bytes.size());
    }
    if (options_.volumes.size() != volumes.size())
        throw VmmError("--volume: the snapshot's instance has " + std::to_string(volumes.size()) +
                       " volumes; give each again with --volume, in the same order (" +
                       std::to_string(options_.volumes.size()) + " given)");
    open_volumes();
    for (size_t i = 0; i < volumes.size(); ++i)
        if (volumes[i].bytes != volumes_[i].bytes || (volumes[i].read_only != 0) != volumes_[i].read_only)
            throw VmmError("--volume " + volumes_[i].path + ": the snapshot's volume " + std::to_string(i) + " was " +
                           std::to_string(volumes[i].bytes) + " bytes" + (volumes[i].read_only ? ", read-only" : "") +
                           "; this one is " + std::to_string(volumes_[i].bytes) +
                           (volumes_[i].read_only ? ", read-only" : ""));
    start_info_ = 0;
}

}  // namespace kiln::proc
