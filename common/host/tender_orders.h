// A tender started ahead of need. kilnd starts `kiln-proc --await-orders FD PADDING` (kiln-vmm
// too) before any instance wants it, so the exec, the dynamic start-up and the page faults of a
// 15 MB binary are behind it when a wake comes; the wake then only sends the tender its orders:
// the arguments it would have been started with and its stdin, stdout and stderr, in one
// SOCK_SEQPACKET message on FD (SCM_RIGHTS). A tender whose FD reaches end of file (kilnd ended,
// or let it go) exits with status 0 and does nothing.
//
// Its /proc/PID/cmdline then shows the orders, written over PADDING (a long argument kept for the
// purpose, as setproctitle does), so that what finds tenders by their arguments (kilnd's
// adopt_or_kill_strays, `pkill -f STATE_DIR`) finds these alike. Arguments longer than the
// padding are cut there: kilnd puts --control and --status-file first.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kiln::host {

inline constexpr const char* kAwaitOrdersFlag = "--await-orders";
inline constexpr size_t kOrdersPadding = 4096;         // bytes of the PADDING argument
inline constexpr size_t kMaxOrdersBytes = 256 * 1024;  // the arguments, NUL-separated

struct StandardStreams {
    int in, out, err;
};

// kilnd's side. False if the tender is gone (or the orders are too long).
bool send_orders(int socket, const std::vector<std::string>& args, StandardStreams streams);

// The tender's side: main()'s own arguments, or, started as `PROGRAM --await-orders FD
// PADDING`, the orders once they come (argv[0] first), its streams made its 0, 1 and 2 and the
// orders shown as its command line.
class TenderArguments {
  public:
    // `while_waiting` runs before the wait: what the tender can do ahead (its first option
    // parse, its first seccomp filter: their code paged in, their allocations made) is then
    // not on the wake's path.
    TenderArguments(int argc, char** argv, const std::function<void()>& while_waiting = {});
    // No orders will come (end of file: exit with 0), or they were malformed (said on stderr;
    // exit non-zero).
    std::optional<int> dismissed() const { return dismissed_; }
    int argc() const { return static_cast<int>(words_.size()); }
    char** argv() { return pointers_.data(); }

  private:
    void await_orders(int argc, char** argv, const std::function<void()>& while_waiting);
    std::vector<std::string> words_;
    std::vector<char*> pointers_;
    std::optional<int> dismissed_;
};

}  // namespace kiln::host
