#include "options.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>

#include "boot/layout.h"
#include "kiln/hostcall.h"
#include "util/error.h"

namespace kiln::vmm {

uint64_t parse_memory_size(const std::string& text, const std::string& flag) {
    auto fail = [&] { return VmmError(flag + ": '" + text + "' is not a memory size (examples: 64M, 512M, 1G)"); };
    size_t i = 0;
    uint64_t value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        uint64_t digit = static_cast<uint64_t>(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10) throw fail();
        value = value * 10 + digit;
        ++i;
    }
    if (i == 0) throw fail();
    std::string unit = text.substr(i);
    for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    uint64_t shift;
    if (unit.empty() || unit == "M" || unit == "MB" || unit == "MIB")
        shift = 20;
    else if (unit == "K" || unit == "KB" || unit == "KIB")
        shift = 10;
    else if (unit == "G" || unit == "GB" || unit == "GIB")
        shift = 30;
    else
        throw fail();
    if (value > (UINT64_MAX >> shift)) throw fail();
    value <<= shift;
    if (value % 4096 != 0) throw VmmError(flag + ": " + text + " is not a whole number of 4 KiB pages");
    if (value > layout::kMaxMemory)
        throw VmmError(flag + ": " + text + " is more than the 3 GiB kiln-vmm supports today");
    return value;
}

namespace {

// A plain decimal number ("1", "0.5", "2.25"): no sign, exponent, infinity or NaN.
std::optional<double> parse_decimal(const std::string& text) {
    if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos) return {};
    double value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return {};
    return value;
}

double parse_percent(const std::string& key, const std::string& value) {
    std::string number = value;
    if (!number.empty() && number.back() == '%') number.pop_back();
    const auto percent = parse_decimal(number);
    if (!percent || *percent > 100)
        throw VmmError("--net: " + key + "=" + value + " is not a percentage (0 to 100, like 1 or 0.5)");
    return *percent;
}

std::chrono::nanoseconds parse_delay(const std::string& value) {
    constexpr double kMaxMs = 10000;
    const auto ms = parse_decimal(value);
    if (!ms || *ms > kMaxMs)
        throw VmmError("--net: delay=" + value + " is not a delay in milliseconds (0 to 10000, like 1 or 0.25)");
    return std::chrono::nanoseconds(std::llround(*ms * 1e6));
}

uint64_t parse_seed(const std::string& value) {
    uint64_t seed = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seed);
    if (value.empty() || error != std::errc() || end != value.data() + value.size())
        throw VmmError("--net: seed=" + value + " is not a seed (a whole number, 0 to 2^64-1)");
    return seed;
}

}  // namespace

NetOptions parse_net_option(const std::string& text) {
    NetOptions net;
    bool have_mac = false, have_seed = false;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(start, end - start);
        const size_t eq = item.find('=');
        const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (key == "tap" && !value.empty()) {
            net.tap = value;
        } else if (key == "mac") {
            unsigned b[6];
            char extra;
            if (std::sscanf(value.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                            &extra) != 6)
                throw VmmError("--net: '" + value + "' is not a MAC address (like 52:54:00:12:34:56)");
            for (int i = 0; i < 6; ++i) net.mac[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
            if (net.mac[0] & 1) throw VmmError("--net: " + value + " is a multicast address");
            have_mac = true;
        } else if (key == "loss" || key == "reorder") {
            double& percent = key == "loss" ? net.faults.loss_percent : net.faults.reorder_percent;
            percent = parse_percent(key, value);
        } else if (key == "delay") {
            net.faults.delay = parse_delay(value);
        } else if (key == "seed") {
            net.faults.seed = parse_seed(value);
            have_seed = true;
        } else {
            throw VmmError("--net: unknown or empty setting '" + item +
                           "' (tap=NAME,mac=MAC,loss=PERCENT,reorder=PERCENT,delay=MS,seed=N)");
        }
        start = end + 1;
    }
    if (net.tap.empty()) throw VmmError("--net: tap=NAME is required");
    if (!have_mac) {
        std::random_device random;
        net.mac = {0x52,
                   0x54,
                   0x00,
                   static_cast<uint8_t>(random()),
                   static_cast<uint8_t>(random()),
                   static_cast<uint8_t>(random())};
    }
    if (!have_seed) {
        std::random_device random;
        net.faults.seed = (static_cast<uint64_t>(random()) << 32) | random();
    }
    return net;
}

VolumeOptions parse_volume_option(const std::string& text) {
    VolumeOptions volume;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(start, end - start);
        if (item.rfind("path=", 0) == 0 && item.size() > 5)
            volume.path = item.substr(5);
        else if (item == "ro")
            volume.read_only = true;
        else
            throw VmmError("--volume: unknown or empty setting '" + item + "' (path=FILE[,ro])");
        start = end + 1;
    }
    if (volume.path.empty()) throw VmmError("--volume: path=FILE is required");
    struct stat st {};
    if (::stat(volume.path.c_str(), &st) != 0) throw system_error("--volume " + volume.path);
    if (!S_ISREG(st.st_mode)) throw VmmError("--volume " + volume.path + ": not a regular file");
    if (st.st_size % 512 != 0)
        throw VmmError("--volume " + volume.path + ": its size (" + std::to_string(st.st_size) +
                       " bytes) is not a whole number of 512-byte sectors");
    return volume;
}

Options parse_options(int argc, char** argv, Monitor monitor) {
    Options o;
    const bool proc = monitor == Monitor::kProc;
    const char* name = proc ? "kiln-proc" : "kiln-vmm";
    CLI::App app{proc ? "kiln-proc: runs one Kiln instance as a confined Linux process (no virtualization); "
                        "exits with the application's status"
                      : "kiln-vmm: runs one Kiln microVM on KVM; exits with the guest's status"};
    app.name(name);
    std::string memory = "64M";
    std::string boot = "auto";
    double timeout_s = 0;
    auto* kernel = app.add_option("--kernel", o.kernel,
                                  proc ? "kernel image (the proc build; default: kiln-proc.elf beside kiln-proc)"
                                       : "kernel image (ELF64 with a PVH or Kiln entry note)");
    auto* restore = app.add_option("--restore", o.restore, "resume the snapshot in this directory instead of booting");
    kernel->excludes(restore);
    app.add_flag("--paused", o.paused, "set everything up, then wait for a resume request on --control before running");
    app.add_option("--initrd", o.initrd, "initial ramdisk, handed to the kernel as a PVH module");
    app.add_option("--cmdline", o.cmdline, "kernel command line: parameters, then -- and the app's argv");
    app.add_option("--memory,-m", memory, "guest memory, e.g. 64M or 1G")->capture_default_str();
    app.add_option("--console", o.console, "write the guest console to this file instead of stdout");
    if (!proc) app.add_option("--boot", boot, "boot protocol: auto, direct64 or pvh")->capture_default_str();
    app.add_option("--timeout", timeout_s, "watchdog: stop the guest after this many seconds (exit 124)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--stats", o.stats, "print vCPU statistics and timings to stderr at exit");
    app.add_option("--control", o.control, "unix socket for JSON control (pause, resume, snapshot, stats, stop)");
    app.add_option("--status-file", o.status_file,
                   std::string("write the exit status to this file when ") + name + " ends");
    if (proc) {
        app.add_option("--resume-fifo", o.resume_fifo,
                       "with --paused: make a FIFO here; a byte written to it resumes the instance");
        app.add_option("--uid", o.uid, "the instance's uid when run as root (default: one of its own)");
        app.add_option("--gid", o.gid, "the instance's gid when run as root (default: one of its own)");
    }
    std::vector<std::string> nets;
    app.add_option("--net", nets,
                   "a network card on a tap device: tap=NAME[,mac=MAC]; faults for tests: "
                   "loss=PERCENT,reorder=PERCENT,delay=MS,seed=N");
    std::vector<std::string> volumes;
    app.add_option("--volume", volumes,
                   "a block device backed by a host file (an ext4 image), in flag order: path=FILE[,ro] "
                   "(at most 16)");
    try {
        app.parse(argc, argv);
        if (!proc && o.kernel.empty() && o.restore.empty()) throw CLI::RequiredError("--kernel");
        if (o.paused && o.control.empty())
            throw CLI::ValidationError("--paused", "needs --control: only a resume request starts the instance");
        if (!o.resume_fifo.empty() && !o.paused)
            throw CLI::ValidationError("--resume-fifo", "needs --paused: it resumes a held instance");
        if (proc && o.paused && o.restore.empty())
            throw CLI::ValidationError("--paused", "kiln-proc holds a restored instance only (give --restore DIR)");
        o.memory_bytes = parse_memory_size(memory, "--memory");
        o.boot = parse_boot_mode(boot);
        for (const auto& n : nets) o.nets.push_back(parse_net_option(n));
        if (volumes.size() > kMaxVolumes)
            throw VmmError("--volume: " + std::to_string(volumes.size()) + " volumes; at most " +
                           std::to_string(kMaxVolumes) + " are supported");
        for (const auto& v : volumes) o.volumes.push_back(parse_volume_option(v));
    } catch (const CLI::ParseError& e) {
        std::exit(app.exit(e) == 0 ? 0 : abi::kExitVmmError);
    } catch (const VmmError& e) {
        std::cerr << name << ": " << e.what() << "\n";
        std::exit(abi::kExitVmmError);
    }
    if (timeout_s > 0) o.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    return o;
}

void warm_up_options(Monitor monitor) {
    const char* sample[] = {"tender",
                            "--restore",
                            "/nonexistent",
                            "--control",
                            "/nonexistent.sock",
                            "--status-file",
                            "/nonexistent.status",
                            "--memory",
                            "64M",
                            "--timeout",
                            "1",
                            "--net",
                            "tap=warmup0,mac=52:54:00:00:00:01",
                            nullptr};
    (void)parse_options(static_cast<int>(std::size(sample)) - 1, const_cast<char**>(sample), monitor);
}

}  // namespace kiln::vmm
