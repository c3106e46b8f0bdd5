// Pipes and eventfds, and the wake-up all pollers share.
#pragma once

#include "fs/file.h"

namespace kiln::fs {

// poll/select sleep here; any file whose readiness changes wakes them (they re-check). One vCPU
// and few descriptors make this simpler than per-file poll tables at no real cost.
sched::WaitQueue& poll_waiters();
void notify_readiness_changed(File& file);

// A new pipe: its read end and its write end.
int64_t create_pipe(uint32_t flags, RefPtr<File>& read_end, RefPtr<File>& write_end);

RefPtr<File> create_eventfd(uint64_t initial, uint32_t flags);

RefPtr<File> create_epoll();

}  // namespace kiln::fs
