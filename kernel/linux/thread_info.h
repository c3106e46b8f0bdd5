// What an application thread carries beyond a kernel thread: its Linux identity and signal state.
#pragma once

#include <stdint.h>

namespace kiln::sched {
struct Thread;
}

namespace kiln::linux {

struct Process;

struct ThreadInfo {
    sched::Thread* thread = nullptr;
    Process* process = nullptr;
    uint64_t clear_child_tid = 0;  // set_tid_address / CLONE_CHILD_CLEARTID
    uint64_t robust_list = 0;
    uint64_t robust_list_size = 0;
    uint64_t rseq = 0;
    uint64_t signal_mask = 0;  // bit (n-1) blocks signal n
    uint64_t pending = 0;      // signals sent to this thread
    uint64_t altstack_sp = 0;
    uint64_t altstack_size = 0;
    int altstack_flags = 2;     // SS_DISABLE
    bool exact_return = false;  // every register must come back as in the frame (sigreturn)
};

// Something this thread should act on: an unblocked signal for it or for the process.
bool signal_pending(const ThreadInfo& info);
void release_thread_info(ThreadInfo* info);

}  // namespace kiln::linux
