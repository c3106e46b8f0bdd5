#include "snapshot/snapshot_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "host/unique_fd.h"
#include "util/error.h"

namespace kiln::vmm::snapshot {
namespace {

void write_all(int fd, const uint8_t* data, size_t size, off_t offset, const std::string& what) {
    while (size > 0) {
        const ssize_t n = ::pwrite(fd, data, size, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw system_error("snapshot: writing " + what);
        data += n;
        size -= static_cast<size_t>(n);
        offset += n;
    }
}

bool zero_page(const uint8_t* page) {
    static const uint8_t zeros[4096] = {};
    return std::memcmp(page, zeros, 4096) == 0;
}

}  // namespace

uint64_t realtime_ns() {
    timespec t{};
    clock_gettime(CLOCK_REALTIME, &t);
    return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

void write_memory(const GuestMemory& memory, const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) throw system_error("snapshot: " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(memory.size())) != 0) throw system_error("snapshot: sizing " + path);
    auto write_range = [&](uint64_t start, uint64_t end) {
        for (uint64_t page = start; page < end; page += 4096) {
            const uint8_t* bytes = memory.host_base() + page;
            if (!zero_page(bytes)) write_all(fd.get(), bytes, 4096, static_cast<off_t>(page), path);
        }
    };
    if (memory.is_memfd()) {
        off_t at = ::lseek(memory.fd(), 0, SEEK_DATA);
        while (at >= 0 && static_cast<uint64_t>(at) < memory.size()) {
            off_t end = ::lseek(memory.fd(), at, SEEK_HOLE);
            if (end < 0) end = static_cast<off_t>(memory.size());
            write_range(static_cast<uint64_t>(at), static_cast<uint64_t>(end));
            at = ::lseek(memory.fd(), end, SEEK_DATA);
        }
    } else {
        write_range(0, memory.size());
    }
    if (::fsync(fd.get()) != 0) throw system_error("snapshot: fsync " + path);
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd.valid()) throw system_error("snapshot: " + path);
    write_all(fd.get(), bytes.data(), bytes.size(), 0, path);
    if (::fsync(fd.get()) != 0) throw system_error("snapshot: fsync " + path);
}

std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw VmmError("snapshot " + path + ": cannot read it");
    return {std::istreambuf_iterator<char>(in), {}};
}

void keep_initrd(const std::string& initrd, const std::string& dir) {
    const std::string target = dir + "/initrd";
    std::error_code error;
    std::filesystem::remove(target, error);
    if (::link(initrd.c_str(), target.c_str()) != 0) std::filesystem::copy_file(initrd, target, error);
    if (error) throw VmmError("snapshot: cannot keep the initrd: " + error.message());
}

void add_listeners(Writer& writer, const Listeners& listeners) {
    std::vector<uint32_t> flat;
    for (const auto& [protocol, port] : listeners) flat.insert(flat.end(), {protocol, port});
    writer.add(Tag::kListeners, 0, flat.data(), flat.size() * sizeof(uint32_t));
}

Listeners read_listeners(const Reader& state) {
    const auto& bytes = state.get(Tag::kListeners);
    if (bytes.size() % (2 * sizeof(uint32_t))) state.fail("bad listener list");
    Listeners out;
    for (size_t offset = 0; offset < bytes.size(); offset += 2 * sizeof(uint32_t)) {
        uint32_t pair[2];
        std::memcpy(pair, bytes.data() + offset, sizeof(pair));
        out.emplace_back(pair[0], pair[1]);
    }
    return out;
}

}  // namespace kiln::vmm::snapshot
