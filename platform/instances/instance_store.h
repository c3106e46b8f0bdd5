// Instances as kilnd keeps them: one row each in the state database (SQLite, WAL), so a kilnd
// killed at any moment restarts with every instance, and what it last knew of its kiln-vmm.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "instances/limits.h"
#include "store/sqlite.h"

namespace kiln::instances {

// Unikraft Cloud's instance states (kilnd does not use `draining`).
inline constexpr const char* kStopped = "stopped";
inline constexpr const char* kStarting = "starting";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kStopping = "stopping";
inline constexpr const char* kStandby = "standby";  // scaled to zero: no kiln-vmm, woken by a connection

// stop_reason bits (Unikraft Cloud's K, A, P, U, F).
inline constexpr int64_t kStopKernel = 1;    // the guest ended in order: kiln-vmm reported a status
inline constexpr int64_t kStopApp = 2;       // the application ended by itself: exit_code is valid
inline constexpr int64_t kStopPlatform = 4;  // kilnd stopped it
inline constexpr int64_t kStopUser = 8;      // on a user's request
inline constexpr int64_t kStopForced = 16;   // killed, not asked

// Unikraft Cloud's scale_to_zero: with policy `on` (or `idle`), an instance of a service with no
// connection for `cooldown_ms` goes to standby and the next connection wakes it. Without
// `stateful` each wake restores the snapshot taken right after the app first became ready; with
// it, the instance is snapshotted at each scale-down and wakes as it left.
struct ScaleToZero {
    std::string policy = "off";  // off | on | idle
    bool stateful = false;
    int64_t cooldown_ms = 1000;

    bool enabled() const { return policy != "off"; }
    nlohmann::json to_json() const;
    static ScaleToZero from_json(const nlohmann::json& j);
};

struct Instance {
    std::string uuid, name;
    std::string image;              // the reference it was created from ("hello:latest")
    std::string image_digest;       // what that reference named then
    std::vector<std::string> args;  // replace the image's cmd when not empty
    std::vector<std::string> env;   // NAME=VALUE, after the image's own
    int64_t memory_mb = 0;
    std::string restart_policy = "never";  // never | always | on-failure
    std::string state = kStopped;
    // Why it last stopped, as Unikraft Cloud's bitmask: kStopKernel, kStopApp, kStopPlatform,
    // kStopUser, kStopForced. 15 is a clean stop by the user, 3 an application that ended by itself.
    int64_t stop_reason = 0;
    std::optional<int64_t> exit_code;   // the application's status, when it ended by itself (kStopApp)
    std::optional<int64_t> vmm_status;  // kiln-vmm's own status when it ended the VM (124, 125, 126, 128+signal)
    int64_t pid = 0;                    // kiln-vmm, while one runs
    int64_t pid_start = 0;              // its start time (/proc/PID/stat field 22): pids are reused
    int64_t created_ns = 0, started_ns = 0, stopped_ns = 0;
    int64_t restarts = 0;          // by the restart policy, since the instance last ran well
    int64_t starts = 0;            // every start, by anyone
    std::string ip;                // its address on the private network ("" before its first start)
    std::string service;           // the uuid of the service it serves, "" if none
    std::string platform = "kvm";  // kvm (kiln-vmm) or proc (kiln-proc): instances/platforms.h
    ScaleToZero scale_to_zero;
    Limits limits;  // its cgroup's CPU share and process cap (cgroups.h)

    nlohmann::json to_json() const;
};

// A random (version 4) UUID, for instances and services.
std::string new_uuid();

class InstanceStore {
  public:
    explicit InstanceStore(store::Database& db);

    void insert(const Instance& instance);  // throws DatabaseError if the name or uuid is taken
    void update(const Instance& instance);
    void remove(const std::string& uuid);
    std::optional<Instance> find(const std::string& uuid_or_name);
    std::vector<Instance> list();  // oldest first
    // What the periodic and per-wake work reads instead of list(): at 10,000 services kilnd
    // must not parse every row every 50 ms, nor on a wake's path.
    std::vector<Instance> list_live();  // starting, running or stopping: those with a tender
    std::vector<Instance> list_of_service(const std::string& service_uuid);  // oldest first
    std::vector<std::string> addresses();  // every instance's private IP, where it has one

  private:
    store::Database& db_;
};

}  // namespace kiln::instances
