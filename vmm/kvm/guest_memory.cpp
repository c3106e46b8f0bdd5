#include "kvm/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "util/error.h"

namespace kiln::vmm {

GuestMemory::GuestMemory(uint64_t size) : size_(size) {
    fd_.reset(::memfd_create("kiln-guest-memory", MFD_CLOEXEC));
    if (!fd_.valid()) throw system_error("memfd_create for guest memory");
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0)
        throw system_error("sizing guest memory to " + std::to_string(size >> 20) + " MiB");
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd_.get(), 0);
    if (p == MAP_FAILED) throw system_error("mapping guest memory");
    base_ = static_cast<uint8_t*>(p);
}

GuestMemory::GuestMemory(const std::string& path, uint64_t size) : size_(size), memfd_(false) {
    fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_.valid()) throw system_error("snapshot memory " + path);
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0 || static_cast<uint64_t>(st.st_size) != size)
        throw VmmError("snapshot memory " + path + ": " + std::to_string(st.st_size) + " bytes, the state says " +
                       std::to_string(size));
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd_.get(), 0);
    if (p == MAP_FAILED) throw system_error("mapping snapshot memory " + path);
    base_ = static_cast<uint8_t*>(p);
}

GuestMemory::~GuestMemory() {
    if (base_ != nullptr) ::munmap(base_, size_);
}

std::span<uint8_t> GuestMemory::span(uint64_t gpa, uint64_t length) const {
    if (!contains(gpa, length)) return {};
    return {base_ + gpa, static_cast<size_t>(length)};
}

void GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data) {
    if (!contains(gpa, data.size()))
        throw VmmError("guest write of " + std::to_string(data.size()) + " bytes at " + std::to_string(gpa) +
                       " is outside guest memory");
    std::memcpy(base_ + gpa, data.data(), data.size());
}

}  // namespace kiln::vmm
