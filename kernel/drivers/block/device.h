// Block devices: what a volume's file system reads and writes. A backend (virtio-blk on hw and
// pvm, a host file on proc) registers one device per volume, in the order of the tender's
// `--volume` flags; `kiln.volume=` parameters on the command line name their mount points in the
// same order.
//
// Calls are synchronous: the caller's thread waits for the device, and no other thread runs
// meanwhile (kernel code is not preemptible, and the file systems above rely on an operation
// being atomic: a driver polls rather than sleeps). A write has reached the device
// when it returns; it is durable (survives the host's crash) after flush().
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kiln::block {

inline constexpr size_t kSectorSize = 512;

class Device {
  public:
    virtual ~Device() = default;
    virtual const char* name() const = 0;  // for messages: "vda", "proc0"
    virtual uint64_t sector_count() const = 0;
    virtual bool read_only() const = 0;
    // `bytes` is a multiple of kSectorSize; `buffer` is kernel memory. 0 or a negative errno
    // (EIO; EROFS for a write to a read-only device; EINVAL past the end).
    virtual int read(uint64_t sector, void* buffer, size_t bytes) = 0;
    virtual int write(uint64_t sector, const void* buffer, size_t bytes) = 0;
    // Every write that returned before it is durable when it returns.
    virtual int flush() = 0;
};

// The registry, filled by the backends before file systems mount (device_count() == 0 until then).
void register_device(Device* device);  // kept for the kernel's lifetime
size_t device_count();
Device* device(size_t index);

}  // namespace kiln::block
