#include "instances/supervisor.h"

#include "instances/platforms.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "host/tender_orders.h"
#include "host/unique_fd.h"
#include "instances/tender_spawn.h"
#include "instances/vmm_control.h"
#include "network/private_network.h"

namespace kiln::instances {
namespace fs = std::filesystem;

namespace {

int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The kernel's command line for an instance: env.NAME="value" parameters, the image's kiln.workdir and
// kiln.user, then -- and the program.
std::string guest_cmdline(const nlohmann::json& manifest, const Instance& instance) {
    // Appended piece by piece: GCC 12 sees a false -Wrestrict in chains of string concatenations.
    std::string line;
    std::vector<std::string> env = manifest["env"].get<std::vector<std::string>>();
    env.insert(env.end(), instance.env.begin(), instance.env.end());
    for (const auto& e : env) {
        const auto equals = e.find('=');
        line.append("env.").append(e, 0, equals).append("=\"").append(e, equals + 1).append("\" ");
    }
    // The image's WORKDIR and USER (a Dockerfile's, a container image's), for the kernel to apply.
    for (const auto& [field, parameter] : {std::pair{"workdir", "kiln.workdir"}, std::pair{"user", "kiln.user"}})
        if (manifest.contains(field) && manifest[field].is_string() && !manifest[field].get<std::string>().empty())
            line.append(parameter).append("=\"").append(manifest[field].get<std::string>()).append("\" ");
    const auto cmd = instance.args.empty() ? manifest["cmd"].get<std::vector<std::string>>() : instance.args;
    if (cmd.empty()) return line;
    line.append("--");
    for (const auto& word : cmd) {
        const bool spaces = word.find_first_of(" \t") != std::string::npos;
        line.append(spaces ? " \"" : " ").append(word).append(spaces ? "\"" : "");
    }
    return line;
}

// Reaps any kiln-vmm that was our child, so none lingers as a zombie (its status file says how it ended).
void reap_children() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

// What /proc/PID/stat says of a process: its state letter and start time (clock ticks after boot),
// or {0, 0} when there is no such process. One read into a buffer on the stack: kilnd asks this for
// every live instance on every reconcile round and on a wake's path, where two opened streams per
// question cost a tenth of a millisecond.
struct ProcStat {
    char state = 0;
    int64_t group = 0;  // process group
    int64_t start = 0;
};

// The number at `at` in a /proc stat line, up to the next space.
bool parse_field(std::string_view line, size_t at, int64_t& value) {
    const auto digits = line.substr(at, line.find(' ', at) - at);
    return std::from_chars(digits.data(), digits.data() + digits.size(), value).ec == std::errc{};
}

ProcStat read_proc_stat(int64_t pid) {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/%lld/stat", static_cast<long long>(pid));
    const UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return {};
    char text[1024];
    const ssize_t length = ::read(fd.get(), text, sizeof text);
    if (length <= 0) return {};
    const std::string_view line(text, static_cast<size_t>(length));
    // Field 2 is "(comm)" and may hold spaces and parentheses: count from the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string_view::npos || close + 2 >= line.size()) return {};
    ProcStat stat;
    stat.state = line[close + 2];
    size_t at = close + 2;
    for (int field = 3; field < 22; ++field) {  // to field 5, pgrp, and on to field 22, starttime
        at = line.find(' ', at);
        if (at == std::string_view::npos) return {};
        ++at;
        if (field == 4 && !parse_field(line, at, stat.group)) return {};
    }
    if (!parse_field(line, at, stat.start)) return {};
    return stat;
}

// Until no process of the tender's group runs (its session, from spawn_tender's setsid), at most
// `limit`. kiln-proc's instance is the tender's child and dies of PDEATHSIG only after it,
// holding the tap until then: the instance's next tender would find it busy. kilnd is a child
// subreaper (kilnd/main.cpp), so that orphan becomes its child and reaping ends it; a tender
// adopted from an earlier kilnd leaves its orphans to PID 1, which may reap them late (seconds
// here): a zombie holds no tap, so a group of zombies is done with.
void wait_for_group(int64_t tender, std::chrono::milliseconds limit = std::chrono::seconds(2)) {
    if (tender <= 0) return;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        reap_children();
        if (!group_running(tender) || std::chrono::steady_clock::now() > deadline) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace

int64_t process_start_time(int64_t pid) { return read_proc_stat(pid).start; }

Supervisor::Supervisor(SupervisorOptions options, InstanceStore& instances, images::ImageStore& images)
    : options_(std::move(options)), instances_(instances), images_(images),
      cgroups_(options_.cgroup_root,
               options_.cgroup_parent.empty() ? network::namespace_name(options_.state_dir) : options_.cgroup_parent) {
    if (!cgroups_.available())
        std::fprintf(stderr, "kilnd: instances run without CPU shares and process caps: %s\n",
                     cgroups_.why_not().c_str());
    std::map<std::string, std::string> binaries;
    for (const auto& platform : options_.waiting_tenders)
        binaries[platform] = platform == kPlatformProc ? options_.kiln_proc : options_.kiln_vmm;
    if (!binaries.empty())
        pool_ = std::make_unique<TenderPool>(std::move(binaries), options_.network ? options_.network->ns().fd() : -1,
                                             cgroups_.available() ? &cgroups_ : nullptr);
}

Supervisor::~Supervisor() {
    while (!prepared_.empty()) discard_prepared(prepared_.begin()->first);
    pool_.reset();  // its waiting tenders' groups go before kilnd's own
    cgroups_.remove_parent();
}

std::string Supervisor::instance_dir(const std::string& uuid) const {
    return (fs::path(options_.state_dir) / "instances" / uuid).string();
}

std::vector<std::string> Supervisor::vmm_arguments(Instance& instance, const std::string& restore) {
    const auto image = images_.find(instance.image_digest);
    if (!image) throw std::runtime_error("image " + instance.image + " (" + instance.image_digest + ") is gone");
    const std::string dir = instance_dir(instance.uuid);
    const bool proc = instance.platform == kPlatformProc;
    std::vector<std::string> argv{proc ? options_.kiln_proc : options_.kiln_vmm, "--control",
                                  control_socket(instance.uuid), "--status-file", dir + "/status"};
    if (!restore.empty()) {
        argv.insert(argv.end(), {"--restore", restore});
    } else {
        // kiln-proc runs its own build of the kernel (kiln-proc.elf, beside it); the image's is
        // the VM build.
        if (!proc) argv.insert(argv.end(), {"--kernel", images_.blob_path(image->manifest["kernel"]["digest"])});
        argv.insert(argv.end(), {"--memory", std::to_string(instance.memory_mb) + "M"});
        if (image->manifest.contains("rootfs"))
            argv.insert(argv.end(), {"--initrd", images_.blob_path(image->manifest["rootfs"]["digest"])});
    }
    std::string cmdline;
    if (options_.network) {
        if (instance.ip.empty()) {
            instance.ip = options_.network->allocate(instances_.addresses());
        }
        const auto endpoint = network::PrivateNetwork::endpoint(instance.uuid, instance.ip);
        options_.network->attach(endpoint);
        argv.insert(argv.end(), {"--net", "tap=" + endpoint.tap + ",mac=" + endpoint.mac});
        cmdline = options_.network->kernel_parameters(endpoint) + " ";
    }
    // Its volumes: one block device each, in attachment order, and where the kernel mounts
    // them (volumes/volume_spec.h). A restore opens the same files again.
    if (options_.volumes) {
        const auto mounts = options_.volumes(instance);
        const auto flags = volumes::tender_volume_flags(mounts);
        argv.insert(argv.end(), flags.begin(), flags.end());
        if (!mounts.empty()) cmdline.append(volumes::kernel_volume_parameters(mounts)).append(" ");
    }
    cmdline += guest_cmdline(image->manifest, instance);
    // A restored guest keeps the command line it booted with.
    if (restore.empty() && !cmdline.empty()) argv.insert(argv.end(), {"--cmdline", cmdline});
    return argv;
}

bool Supervisor::writes_volumes(const Instance& instance) const {
    if (!options_.volumes) return false;
    for (const auto& mount : options_.volumes(instance))
        if (!mount.readonly) return true;
    return false;
}

Started Supervisor::start(Instance& instance, const std::string& restore) {
    if (!restore.empty())
        if (auto resumed = resume_prepared(instance, restore)) return *resumed;
    discard_prepared(instance.uuid);  // a boot, or a restore of something else
    const std::string dir = instance_dir(instance.uuid);
    fs::create_directories(dir);
    fs::remove(dir + "/status");
    fs::remove(control_socket(instance.uuid));
    std::vector<std::string> argv = vmm_arguments(instance, restore);

    // Recorded before the process exists: a kilnd killed from here on finds the instance
    // `starting` and its kiln-vmm by its status-file argument (adopt_or_kill_strays).
    instance.state = kStarting;
    instance.pid = 0;
    instances_.update(instance);
    const auto forked = std::chrono::steady_clock::now();
    const pid_t pid = spawn(instance, argv);
    record_running(instance, pid, process_start_time(pid));
    return {forked, false};
}

// kiln-vmm runs; the app's readiness is its `ready` event.
void Supervisor::record_running(Instance& instance, int64_t pid, int64_t pid_start) {
    instance.pid = pid;
    instance.pid_start = pid_start;
    ++instance.starts;
    instance.state = kRunning;
    instance.started_ns = now_ns();
    instance.stop_reason = 0;
    instance.exit_code.reset();
    instance.vmm_status.reset();
    instances_.update(instance);
    if (options_.on_started) options_.on_started(instance);
}

pid_t Supervisor::spawn(const Instance& instance, std::vector<std::string>& argv) {
    const std::string dir = instance_dir(instance.uuid);
    UniqueFd console(::open((dir + "/console.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    UniqueFd messages(::open((dir + "/vmm.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!console.valid() || !messages.valid()) throw std::runtime_error(dir + ": cannot open the instance's logs");
    std::optional<TenderPool::Tender> waiting = pool_ ? pool_->take(instance.platform) : std::nullopt;
    // A waiting tender's group, its processes in it, becomes the instance's if the host can
    // rename it; else they are moved (launch()).
    if (waiting && !waiting->group.empty() && cgroups_.adopt(waiting->group, instance.uuid)) waiting->group.clear();
    std::vector<UniqueFd> procs;
    try {
        if (cgroups_.available()) procs = cgroups_.prepare(instance.uuid, instance.limits);
    } catch (...) {
        if (waiting && !waiting->group.empty()) cgroups_.remove(waiting->group);  // its tender ends with `waiting`
        throw;
    }
    const pid_t pid = launch(argv, console.get(), messages.get(), procs, std::move(waiting));
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    return pid;
}

namespace {

// What a snapshot directory holds now, as far as a prepared restore is concerned: its `state`
// file's identity and time (a new snapshot writes a new one). Empty: no snapshot.
std::string snapshot_identity(const std::string& dir) {
    struct stat st {};
    if (::stat((dir + "/state").c_str(), &st) != 0) return {};
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// Until `path` exists (a tender just started creates its control socket), while `pid` runs.
// The tender is asked first: a killed one leaves its socket file behind, and its instance process,
// dying after it (PDEATHSIG), may still hold the resume FIFO open for a moment: a resume written
// there would go to nobody, and the wake would count a dead instance as running.
bool wait_for_socket(const std::string& path, int64_t pid, int64_t start) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (;;) {
        if (!process_running(pid, start)) return false;
        if (::access(path.c_str(), F_OK) == 0) return true;
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
}

}  // namespace

// Off every wake's path: the tender loads the snapshot, confines the instance, maps its memory
// and leaves the kernel parked before it runs anything (kiln-proc --paused); the wake then only
// asks it to go on. kiln-vmm takes --paused too, but a parked VM holds its whole guest memory and
// a VM's set-up, so only proc instances are prepared.
void Supervisor::prepare_wake(Instance& instance) {
    if (options_.prepared_wakes == 0 || instance.platform != kPlatformProc) return;
    const std::string snapshot = snapshot_dir(instance.uuid);
    std::string identity = snapshot_identity(snapshot);
    if (identity.empty()) return;
    discard_prepared(instance.uuid);
    while (prepared_.size() >= options_.prepared_wakes) {
        auto oldest = std::min_element(prepared_.begin(), prepared_.end(),
                                       [](const auto& a, const auto& b) { return a.second.order < b.second.order; });
        discard_prepared(oldest->first);
    }
    try {
        const std::string dir = instance_dir(instance.uuid);
        fs::remove(dir + "/status");
        fs::remove(control_socket(instance.uuid));
        std::vector<std::string> argv = vmm_arguments(instance, snapshot);
        argv.insert(argv.end(), {"--paused", "--resume-fifo", resume_fifo(instance.uuid)});
        const pid_t pid = spawn(instance, argv);
        prepared_[instance.uuid] = {pid, process_start_time(pid), instance.service, std::move(identity),
                                    ++prepared_order_};
    } catch (const std::exception& e) {
        cgroups_.remove(instance.uuid);
        std::fprintf(stderr, "kilnd: preparing the wake of %s: %s\n", instance.name.c_str(), e.what());
    }
}

std::optional<Started> Supervisor::resume_prepared(Instance& instance, const std::string& restore) {
    const auto it = prepared_.find(instance.uuid);
    if (it == prepared_.end()) return std::nullopt;
    const PreparedWake prepared = it->second;
    prepared_.erase(it);
    const std::string control = control_socket(instance.uuid);
    std::string failure;
    if (restore != snapshot_dir(instance.uuid) || snapshot_identity(restore) != prepared.snapshot) {
        failure = "its snapshot changed";
    } else if (!wait_for_socket(control, prepared.pid, prepared.pid_start)) {
        failure = "its tender ended";
    } else {
        // A byte in its resume FIFO wakes the held kernel itself; the control socket's resume
        // (through the tender's supervisor, one more process woken) if that FIFO takes none.
        // Not waiting for an answer: the instance takes connections the moment it runs, and its
        // tap holds what comes before. Should its kernel fail to go on, the tender ends and the
        // instance ends as any does.
        const auto asked = std::chrono::steady_clock::now();
        if (resume_through_fifo(resume_fifo(instance.uuid)) || control_send(control, {{"op", "resume"}})) {
            record_running(instance, prepared.pid, prepared.pid_start);
            // kilnd snapshots an instance only after its `ready` (services/controller.cpp): its
            // app listens again as soon as it runs.
            return Started{asked, true};
        }
        failure = std::string("its control socket: ") + std::strerror(errno);
    }
    std::fprintf(stderr, "kilnd: the prepared wake of %s is not used (%s): restoring anew\n", instance.name.c_str(),
                 failure.c_str());
    end_prepared(instance.uuid, prepared);
    return std::nullopt;
}

std::optional<std::string> Supervisor::prepared_wake_of_service(const std::string& service) const {
    for (const auto& [uuid, prepared] : prepared_)
        if (!service.empty() && prepared.service == service) return uuid;
    return std::nullopt;
}

void Supervisor::discard_prepared(const std::string& uuid) {
    const auto it = prepared_.find(uuid);
    if (it == prepared_.end()) return;
    const PreparedWake prepared = it->second;
    prepared_.erase(it);
    end_prepared(uuid, prepared);
}

void Supervisor::end_prepared(const std::string& uuid, const PreparedWake& prepared) {
    if (process_start_time(prepared.pid) == prepared.pid_start) {
        ::kill(static_cast<pid_t>(-prepared.pid), SIGKILL);  // its group: the instance process too
        wait_for_group(prepared.pid);
    }
    cgroups_.remove(uuid);
}

pid_t Supervisor::launch(std::vector<std::string>& argv, int console, int messages, const std::vector<UniqueFd>& procs,
                         std::optional<TenderPool::Tender> waiting) {
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null.valid()) return -1;
    if (waiting) {
        if (!waiting->group.empty()) {
            // Not adopted: before its orders, with the instance process it forked while waiting,
            // it moves to the instance's group, and leaves its own empty.
            Cgroups::move_with_children(procs, waiting->pid);
            cgroups_.remove(waiting->group);
        }
        if (host::send_orders(waiting->orders.get(), {argv.begin() + 1, argv.end()}, {null.get(), console, messages}))
            return waiting->pid;
        ::kill(waiting->pid, SIGKILL);  // it could not take them: a new one does
    }
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int netns = options_.network ? options_.network->ns().fd() : -1;
    std::vector<int> cgroup_procs;
    for (const auto& fd : procs) cgroup_procs.push_back(fd.get());
    return spawn_tender(args.data(), {null.get(), console, messages, netns, -1, cgroup_procs.data(),
                                      static_cast<int>(cgroup_procs.size())});
}

void Supervisor::kill_and_wait(const Instance& instance) {
    ::kill(static_cast<pid_t>(-instance.pid), SIGKILL);  // the tender's group: the instance at once too
    while (alive(instance)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    wait_for_group(instance.pid);
}

void Supervisor::standby(Instance& instance) {
    restart_due_.erase(instance.uuid);
    if (options_.on_ended) options_.on_ended(instance);
    if (alive(instance)) kill_and_wait(instance);
    cgroups_.remove(instance.uuid);  // 10,000 services in standby hold no cgroup
    instance.state = kStandby;
    instance.pid = 0;
    instance.pid_start = 0;
    instance.stop_reason = 0;
    instance.stopped_ns = now_ns();
    instances_.update(instance);
    prepare_wake(instance);
}

void Supervisor::forget(Instance& instance) {
    stop(instance, std::chrono::milliseconds(0), true);
    if (options_.network && !instance.ip.empty()) {
        try {
            options_.network->detach(network::PrivateNetwork::endpoint(instance.uuid, instance.ip));
        } catch (const std::exception& e) {
            // The instance goes all the same (its row, cgroups and directory): a half-done
            // deletion is worse than a tap left in the namespace, which this line names.
            std::fprintf(stderr, "kilnd: deleting %s: %s\n", instance.name.c_str(), e.what());
        }
    }
    cgroups_.remove(instance.uuid);
    std::error_code error;
    fs::remove_all(instance_dir(instance.uuid), error);
}

bool group_running(int64_t group) {
    if (group <= 0 || ::kill(static_cast<pid_t>(-group), 0) != 0) return false;  // none left at all
    const ProcStat leader = read_proc_stat(group);
    if (leader.group == group && leader.state != 'Z') return true;
    // Only zombies may be left, which kill() still finds: look at each process.
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename();
        int64_t pid = 0;
        if (std::from_chars(name.data(), name.data() + name.size(), pid).ec != std::errc{}) continue;
        const ProcStat stat = read_proc_stat(pid);
        if (stat.group == group && stat.state != 'Z') return true;
    }
    return false;
}

bool process_running(int64_t pid, int64_t start) {
    if (pid <= 0 || start == 0) return false;
    const ProcStat stat = read_proc_stat(pid);
    return stat.start == start && stat.state != 'Z';  // gone, someone else's now, or a zombie
}

bool Supervisor::alive(const Instance& instance) const {
    reap_children();
    return process_running(instance.pid, instance.pid_start);
}

void Supervisor::stop(Instance& instance, std::chrono::milliseconds drain, bool force) {
    restart_due_.erase(instance.uuid);
    discard_prepared(instance.uuid);
    if (instance.state == kStandby) {
        instance.state = kStopped;
        instance.stop_reason = kStopPlatform | kStopUser;
        instance.stopped_ns = now_ns();
        instances_.update(instance);
        return;
    }
    if (options_.on_ended) options_.on_ended(instance);
    if (!alive(instance)) {
        if (instance.state != kStopped) ended(instance, 0);  // it had ended by itself already
        return;
    }
    instance.state = kStopping;
    instances_.update(instance);
    ::kill(static_cast<pid_t>(force ? -instance.pid : instance.pid), force ? SIGKILL : SIGTERM);
    bool forced = force;
    const auto deadline = std::chrono::steady_clock::now() + drain;
    while (alive(instance)) {
        if (!forced && std::chrono::steady_clock::now() > deadline) {
            ::kill(static_cast<pid_t>(-instance.pid), SIGKILL);
            forced = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ended(instance, kStopPlatform | kStopUser | (forced ? kStopForced : 0));
}

namespace {
// kiln-vmm's own statuses (abi/kiln/hostcall.h): the application did not end by itself.
bool vmm_own_status(int64_t code) { return code == 124 || code == 125 || code == 126; }
}  // namespace

void Supervisor::ended(Instance& instance, int64_t by) {
    if (options_.on_ended) options_.on_ended(instance);
    // Its tap and resources free for a restart (unless the pid is another process's by now).
    const int64_t start = process_start_time(instance.pid);
    if (start == 0 || start == instance.pid_start) wait_for_group(instance.pid);
    cgroups_.remove(instance.uuid);  // made again at its next start: a stopped instance holds none
    std::ifstream status(instance_dir(instance.uuid) + "/status");
    int64_t code = 0;
    const bool reported = static_cast<bool>(status >> code);
    instance.exit_code.reset();
    instance.vmm_status.reset();
    instance.stop_reason = by;
    if (reported) {
        instance.stop_reason |= kStopKernel;
        if (by == 0 && !vmm_own_status(code)) {
            instance.stop_reason |= kStopApp;
            instance.exit_code = code;
        } else {
            instance.vmm_status = code;  // the watchdog, a VM that could not start or crashed, a signal
        }
    }
    instance.state = kStopped;
    instance.pid = 0;
    instance.pid_start = 0;
    instance.stopped_ns = now_ns();
    const bool healthy_long_enough = instance.stopped_ns - instance.started_ns >
                                     std::chrono::duration_cast<std::chrono::nanoseconds>(options_.healthy).count();
    if (healthy_long_enough) instance.restarts = 0;
    instances_.update(instance);

    const bool failed = !instance.exit_code || *instance.exit_code != 0;
    const bool restart =
        by == 0 && (instance.restart_policy == "always" || (instance.restart_policy == "on-failure" && failed));
    if (restart) {
        const size_t step = std::min<size_t>(static_cast<size_t>(instance.restarts), options_.backoff.size() - 1);
        restart_due_[instance.uuid] = std::chrono::steady_clock::now() + options_.backoff[step];
    }
}

void Supervisor::adopt_or_kill_strays() {
    const std::string prefix = (fs::path(options_.state_dir) / "instances").string() + "/";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(entry.path() / "cmdline", std::ios::binary);
        std::vector<std::string> argv;
        for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
        std::string uuid;
        for (size_t i = 0; i + 1 < argv.size(); ++i)
            if (argv[i] == "--status-file" && argv[i + 1].rfind(prefix, 0) == 0)
                uuid = argv[i + 1].substr(prefix.size(), argv[i + 1].find('/', prefix.size()) - prefix.size());
        if (uuid.empty()) continue;
        const int64_t pid = std::stoll(name);
        auto instance = instances_.find(uuid);
        if (instance && instance->uuid == uuid && instance->pid == pid) continue;  // known
        if (instance && instance->uuid == uuid && instance->pid == 0 && instance->state == kStarting) {
            instance->pid = pid;
            instance->pid_start = process_start_time(pid);
            instance->state = kRunning;
            instances_.update(*instance);
            continue;
        }
        ::kill(static_cast<pid_t>(pid), SIGKILL);  // nobody's: its instance is gone or has another
    }
    for (Instance& instance : instances_.list()) {
        // An instance left `starting` whose kiln-vmm never came is simply stopped; one left
        // `stopping` is stopped now (its drain was cut short with kilnd).
        if (instance.state == kStarting && instance.pid == 0) ended(instance, 0);
        if (instance.state == kStopping && alive(instance)) ::kill(static_cast<pid_t>(instance.pid), SIGKILL);
    }
}

std::chrono::nanoseconds Supervisor::next_round(std::chrono::nanoseconds round) const {
    const auto now = std::chrono::steady_clock::now();
    for (const auto refill : {pool_ ? pool_->next_refill() : std::nullopt,
                              options_.network ? options_.network->next_spare_refill() : std::nullopt})
        if (refill) round = std::clamp<std::chrono::nanoseconds>(*refill - now, {}, round);
    return round;
}

void Supervisor::reconcile() {
    if (pool_) pool_->refill();
    // Only the instances with a tender, and those with a restart due: every 50 ms, kilnd must
    // not read the rows of thousands of stopped and standby ones.
    for (Instance& instance : instances_.list_live())
        if ((instance.state != kStarting || instance.pid != 0) && !alive(instance))
            ended(instance, instance.state == kStopping ? kStopPlatform | kStopUser : 0);
    const auto now = std::chrono::steady_clock::now();
    for (auto due = restart_due_.begin(); due != restart_due_.end();) {
        if (due->second > now) {
            ++due;
            continue;
        }
        std::optional<Instance> instance = instances_.find(due->first);
        if (instance && instance->state != kStopped) {  // started meanwhile: its restart waits for its end
            ++due;
            continue;
        }
        due = restart_due_.erase(due);
        if (!instance) continue;  // deleted meanwhile
        ++instance->restarts;
        start(*instance);
    }
    if (options_.network) {
        try {
            options_.network->refill_spare_taps();
        } catch (const std::exception& e) {  // starts make their taps themselves meanwhile
            std::fprintf(stderr, "kilnd: making a spare tap: %s\n", e.what());
        }
    }
}

}  // namespace kiln::instances
