// One kiln-vmm per running instance. kilnd's supervisor starts them detached (their own session,
// so they outlive a kilnd that is killed), finds them again by pid and start time after a
// restart, learns how they ended from the status file kiln-vmm writes, and restarts them as
// their policy says, with back-off.
//
//   STATE/instances/<uuid>/console.log   the guest console, appended across restarts (the logs)
//   STATE/instances/<uuid>/vmm.log       kiln-vmm's own messages
//   STATE/instances/<uuid>/control.sock  kiln-vmm's control socket
//   STATE/instances/<uuid>/status        kiln-vmm's exit status, written as it ends
//   STATE/instances/<uuid>/snapshot/     what a scaled-to-zero instance wakes from
//
// With a private network, each kiln-vmm runs inside its namespace on the instance's own tap.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "images/image_store.h"
#include "instances/cgroups.h"
#include "instances/instance_store.h"
#include "instances/tender_pool.h"
#include "volumes/volume_spec.h"

namespace kiln::network {
class PrivateNetwork;
}

namespace kiln::instances {

struct SupervisorOptions {
    std::string state_dir;
    std::string kiln_vmm;   // the kiln-vmm binary (platform kvm)
    std::string kiln_proc;  // the kiln-proc binary (platform proc), which finds its own kernel
    // Delays before the 1st, 2nd, ... restart; the last repeats. Reset after `healthy` of running.
    std::vector<std::chrono::milliseconds> backoff{std::chrono::seconds(0),  std::chrono::seconds(5),
                                                   std::chrono::seconds(10), std::chrono::seconds(20),
                                                   std::chrono::seconds(40), std::chrono::minutes(5)};
    std::chrono::milliseconds healthy{std::chrono::seconds(10)};
    network::PrivateNetwork* network = nullptr;  // none: instances have no network card
    // Platforms to keep a tender waiting for (tender_pool.h): a start sends it its orders.
    std::vector<std::string> waiting_tenders;
    // Where the host's cgroups are mounted, and kilnd's group in them (one per state directory).
    std::string cgroup_root = "/sys/fs/cgroup", cgroup_parent;
    // proc instances put in standby whose restore is made ready at once (`kiln-proc --restore
    // --paused`: loaded, confined, mapped, parked), so that their wake is a resume request; the
    // most recently idled ones, at most this many (each holds two processes and its memory copy).
    size_t prepared_wakes = 32;
    // Told when an instance's kiln-vmm was started (or restored) and when it ended or was
    // stopped, on the thread that did it, under kilnd's state lock.
    std::function<void(const Instance&)> on_started, on_ended;
    // The volumes attached to an instance, in device order (volumes/volume_store.h); none if unset.
    std::function<std::vector<volumes::VolumeMount>(const Instance&)> volumes;
};

// What start() did: when, and whether the app is known to listen already.
struct Started {
    // The tender forked, or the prepared one asked to resume (a wake's trace counts from it).
    std::chrono::steady_clock::time_point at;
    // A prepared restore asked to resume (kilnd's snapshots are taken after the app's `ready`):
    // it may take connections now.
    bool ready = false;
};

class Supervisor {
  public:
    // Not thread-safe: kilnd calls it under its state lock.
    Supervisor(SupervisorOptions options, InstanceStore& instances, images::ImageStore& images);
    ~Supervisor();

    // Starts kiln-vmm for `instance` (which must be stopped or in standby) and records it; with
    // `restore`, it resumes the snapshot in that directory instead of booting (a restore prepared
    // at its standby is resumed). Throws on failure.
    Started start(Instance& instance, const std::string& restore = {});
    // Scale to zero: kills kiln-vmm (any snapshot is the caller's to take first) and records the
    // instance in standby; then prepares its next wake from that snapshot (prepared_wakes).
    void standby(Instance& instance);
    // How many standby instances have a restore waiting for their wake.
    size_t prepared_count() const { return prepared_.size(); }
    // An instance of `service` with a restore waiting for its wake, if there is one.
    std::optional<std::string> prepared_wake_of_service(const std::string& service) const;
    // The instance is deleted: stops it, removes its tap and its directory.
    void forget(Instance& instance);
    // Asks kiln-vmm to stop (SIGTERM), waits up to `drain`, then kills it. With `force`, kills at once.
    void stop(Instance& instance, std::chrono::milliseconds drain, bool force);
    // Looks at every instance that should have a kiln-vmm: notices ends, applies restart policies.
    void reconcile();
    // How long the reconciler may wait for its next round, at most `round`: less when the pool
    // of waiting tenders or the spare taps are due a refill sooner.
    std::chrono::nanoseconds next_round(std::chrono::nanoseconds round) const;
    // At kilnd's start: every kiln-vmm of this state directory is either an instance's (adopted,
    // if kilnd died between starting it and recording it) or killed (its instance is gone or
    // already has another). None is left running unknown.
    void adopt_or_kill_strays();

    std::string instance_dir(const std::string& uuid) const;
    std::string snapshot_dir(const std::string& uuid) const { return instance_dir(uuid) + "/snapshot"; }
    // A prepared restore's --resume-fifo: its wake writes a byte there (instances/vmm_control.h).
    std::string resume_fifo(const std::string& uuid) const { return instance_dir(uuid) + "/resume.fifo"; }
    std::string control_socket(const std::string& uuid) const { return instance_dir(uuid) + "/control.sock"; }
    // True if the instance has a volume it may write: its memory and its volumes move on together,
    // so only a snapshot taken as it stopped may wake it.
    bool writes_volumes(const Instance& instance) const;
    // Each instance's CPU share and process cap; none where the host has no usable cgroups.
    const Cgroups& cgroups() const { return cgroups_; }

  private:
    // A restore made ready while its instance is in standby, and what it was made from.
    struct PreparedWake {
        int64_t pid = 0, pid_start = 0;
        std::string service;   // the instance's, if any
        std::string snapshot;  // snapshot_identity() of the directory at the time
        uint64_t order = 0;    // older ones go first when there are too many
    };

    bool alive(const Instance& instance) const;
    void record_running(Instance& instance, int64_t pid, int64_t pid_start);
    // The tender for `argv`, its output appended to the instance's logs, in the instance's cgroups.
    pid_t spawn(const Instance& instance, std::vector<std::string>& argv);
    void prepare_wake(Instance& instance);
    // The prepared restore of `instance` resumed and recorded as its process; nullopt (and the
    // prepared one ended) if there is none, or it is not of `restore` as it is now, or it failed.
    std::optional<Started> resume_prepared(Instance& instance, const std::string& restore);
    void discard_prepared(const std::string& uuid);
    void end_prepared(const std::string& uuid, const PreparedWake& prepared);
    void kill_and_wait(const Instance& instance);
    std::vector<std::string> vmm_arguments(Instance& instance, const std::string& restore);
    // The tender's pid, `waiting` given its orders or a new one; -1 with errno.
    // Its cgroup (`procs`, open) holds it before it starts the instance.
    pid_t launch(std::vector<std::string>& argv, int console, int messages, const std::vector<UniqueFd>& procs,
                 std::optional<TenderPool::Tender> waiting);
    // Records how kiln-vmm ended; `by` is kStopPlatform | kStopUser (| kStopForced) for a stop kilnd made.
    void ended(Instance& instance, int64_t by);

    SupervisorOptions options_;
    InstanceStore& instances_;
    images::ImageStore& images_;
    std::map<std::string, std::chrono::steady_clock::time_point> restart_due_;  // uuid -> when
    std::unique_ptr<TenderPool> pool_;
    Cgroups cgroups_;
    std::map<std::string, PreparedWake> prepared_;  // uuid ->
    uint64_t prepared_order_ = 0;
};

// /proc/PID/stat's start time (clock ticks since boot); 0 if there is no such process.
int64_t process_start_time(int64_t pid);
// True while the process PID that started at `start` (process_start_time) runs: not gone, not
// another process under a reused pid, not a zombie.
bool process_running(int64_t pid, int64_t start);
// True while a process of process group `group` runs; zombies (which kill() still finds) do not.
bool group_running(int64_t group);

}  // namespace kiln::instances
