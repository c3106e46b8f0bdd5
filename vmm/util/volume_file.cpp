#include "util/volume_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "util/error.h"

namespace kiln::vmm {

VolumeFile open_volume(const VolumeOptions& volume) {
    VolumeFile file;
    file.path = volume.path;
    file.read_only = volume.read_only;
    file.fd.reset(::open(volume.path.c_str(), (volume.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
    if (!file.fd.valid()) throw system_error("--volume " + volume.path);
    struct stat st {};
    if (::fstat(file.fd.get(), &st) != 0) throw system_error("--volume " + volume.path);
    if (!S_ISREG(st.st_mode)) throw VmmError("--volume " + volume.path + ": not a regular file");
    if (st.st_size % 512 != 0)
        throw VmmError("--volume " + volume.path + ": its size is not a whole number of 512-byte sectors");
    if (::flock(file.fd.get(), (volume.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            throw VmmError("--volume " + volume.path + ": in use by another instance (it holds the file's lock)");
        throw system_error("--volume " + volume.path + ": flock");
    }
    file.bytes = static_cast<uint64_t>(st.st_size);
    return file;
}

}  // namespace kiln::vmm
