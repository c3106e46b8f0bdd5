// kilnd's client of a kiln-vmm control socket (docs/control-socket.md): one request, one answer.
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kiln::instances {

// Sends `request` to the control socket at `path` and returns the answer (events that arrive
// first are skipped); nullopt if kiln-vmm does not answer within `timeout`.
std::optional<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                              std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

// Sends `request` without waiting for its answer (the monitor serves a client that has gone);
// false if the socket takes no connection or no request.
bool control_send(const std::string& path, const nlohmann::json& request);

// Resumes a kiln-proc restore held with --resume-fifo PATH: a byte written to its FIFO reaches the
// held kernel itself (one process woken, not the tender's supervisor and then the kernel). False
// if no tender holds the FIFO open (ENXIO), it is gone, or the write fails.
bool resume_through_fifo(const std::string& path);

// Waits for kiln-vmm's `ready` event (the app listens; events are lasting, so it comes even if
// the app got ready before we connected). Connects as soon as the socket exists. False if
// kiln-vmm exits, `keep_waiting` (asked every few milliseconds) says no, or nothing comes
// within `timeout`.
bool wait_ready(const std::string& path, std::chrono::milliseconds timeout, const std::function<bool()>& keep_waiting);

}  // namespace kiln::instances
