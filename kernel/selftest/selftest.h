// `kiln.selftest=1`: the kernel checks its own allocator, heap, exception path and timer, prints
// one line per check, and exits 0 only if all pass.
#pragma once

namespace kiln::selftest {

bool run();

}  // namespace kiln::selftest
