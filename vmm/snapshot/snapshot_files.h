// The files of a snapshot directory, shared by kiln-vmm and kiln-proc (the same format on both):
//
//   DIR/memory   the instance's memory, raw and sparse: pages never touched are holes, zero
//                pages too
//   DIR/state    everything else (state_file.h), each monitor's own sections
//   DIR/initrd   the initrd the guest's root file system points into, if it had one
//
// Each is written whole and made durable before the caller renames it into place, so a snapshot
// that exists is complete.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kvm/guest_memory.h"
#include "snapshot/state_file.h"

namespace kiln::vmm::snapshot {

// The host's wall clock, which a snapshot records so that a restore knows how long it slept.
uint64_t realtime_ns();

// `memory` to `path`, sparse, fsync'ed. A memfd tells which ranges were ever touched (SEEK_DATA);
// a restored VM's private mapping does not, so every page is looked at.
void write_memory(const GuestMemory& memory, const std::string& path);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file(const std::string& path);
// DIR/initrd: a hard link to `initrd` where the file system allows, else a copy.
void keep_initrd(const std::string& initrd, const std::string& dir);

// The listeners the guest announced as ready, (protocol, port): the kListeners section, which a
// restore announces again.
using Listeners = std::vector<std::pair<uint32_t, uint32_t>>;
void add_listeners(Writer& writer, const Listeners& listeners);
Listeners read_listeners(const Reader& state);  // fails the state on a malformed section

}  // namespace kiln::vmm::snapshot
