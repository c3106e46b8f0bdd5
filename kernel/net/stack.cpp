#include "net/stack.h"

#include "console/console.h"
#include "fs/ramfs.h"
#include "fs/vfs.h"
#include "lib/format.h"
#include "lib/string.h"
#include "net/arp.h"
#include "net/interface.h"
#include "net/ipv4.h"
#include "net/tcp.h"
#include "platform/platform.h"
#include "sched/thread.h"
#include "time/clock.h"

namespace kiln::net {

bool start_virtio_net(const Cmdline& cmdline);  // drivers/virtio/net.cpp

namespace {

constinit bool running = false;
constinit volatile bool work_pending = false;
constinit bool asleep = false;
constinit uint64_t sleeping_until = 0;           // while asleep: its deadline, 0 for none
constinit volatile bool deadline_moved = false;  // a timer was set while the thread was awake
constexpr uint64_t kArpTickNs = 100'000'000;

sched::WaitQueue& wakeup() {
    static sched::WaitQueue queue;
    return queue;
}

PacketList& loopback() {
    static PacketList list;
    return list;
}

void network_thread(void*) {
    uint64_t next_arp = 0;  // 0: no ARP work
    for (;;) {
        work_pending = false;
        deadline_moved = false;
        if (NetDevice* dev = device()) dev->poll();
        for (;;) {
            Packet* p = nullptr;
            {
                platform::IrqGuard guard;
                p = loopback().pop_front();
            }
            if (p == nullptr) break;
            receive_ipv4(p);
        }
        const uint64_t now = time::now_ns();
        uint64_t deadline = tcp::tick(now);
        // ARP ticks only while packets wait for an answer or announcements are left (or for a
        // card that needs polling, interface.h): an idle instance sleeps until something
        // happens. (It ticked 10 times a second, always: at 1,000 idle instances, a core.)
        const NetDevice* dev = device();
        const bool tick_anyway = dev == nullptr || !dev->interrupts_every_frame();
        if (!arp_waiting() && !tick_anyway) {
            next_arp = 0;
        } else if (next_arp == 0) {
            next_arp = now + kArpTickNs;  // work just came: its first tick a tick from now
        } else if (now >= next_arp) {
            arp_tick(now);
            next_arp = arp_waiting() || tick_anyway ? now + kArpTickNs : 0;
        }
        if (next_arp != 0 && (deadline == 0 || deadline > next_arp)) deadline = next_arp;
        platform::IrqGuard guard;
        if (work_pending || deadline_moved) continue;
        sleeping_until = deadline;
        asleep = true;
        sched::wait(wakeup(), deadline, false);
        asleep = false;
        sleeping_until = 0;
    }
}

// kiln.dns= makes the kernel provide /etc/resolv.conf (and /etc/hosts), so libc's resolver
// works, unless the root file system brings its own. kiln.search= adds a search domain, so
// that a bare name ("db") finds "db.internal" as it would on a docker network.
void write_resolver_files(const Ipv4Config& c, StringView search) {
    auto write_file = [](StringView path, StringView text) {
        RefPtr<fs::Node> existing;
        if (fs::resolve(path, fs::root(), true, existing) == 0) return;
        RefPtr<fs::Node> etc;
        if (fs::make_directories("/etc", etc) < 0) return;
        auto* file = new fs::RamFile(0644);
        RefPtr<fs::Node> node(file);
        (void)file->write(0, fs::IoBuffer::kernel(text.data()), text.size());
        (void)etc->add_entry(path.substr(5), node);
    };
    if (c.dns != 0) {
        char ip[16];
        format_ip(c.dns, ip);
        char text[160];
        size_t n = format_buffer(text, sizeof(text), "nameserver {}\n", StringView(ip));
        if (!search.empty() && search.size() < 64)
            n += format_buffer(text + n, sizeof(text) - n, "search {}\n", search);
        write_file("/etc/resolv.conf", {text, n});
    }
    char own[16];
    format_ip(c.address != 0 ? c.address : 0x7f000001, own);
    char hosts[128];
    const size_t n = format_buffer(hosts, sizeof(hosts), "127.0.0.1 localhost\n{} kiln\n", StringView(own));
    write_file("/etc/hosts", {hosts, n});
}

bool parse_address(const Cmdline& cmdline, StringView key, uint32_t& address, uint32_t* prefix) {
    StringView text;
    if (!cmdline.find(key, text)) return true;
    size_t slash = text.find('/');
    StringView ip = slash == StringView::npos ? text : text.substr(0, slash);
    if (!parse_ip(ip.data(), ip.size(), address)) {
        console::print("kiln: {}={} is not an IPv4 address\n", key, text);
        return false;
    }
    if (prefix) {
        uint64_t bits = 24;
        if (slash != StringView::npos && (!parse_u64(text.substr(slash + 1), bits) || bits > 32)) {
            console::print("kiln: {}={}: bad prefix length\n", key, text);
            return false;
        }
        *prefix = static_cast<uint32_t>(bits);
    }
    return true;
}

}  // namespace

bool init(const Cmdline& cmdline) {
    Ipv4Config c;
    uint32_t prefix = 24;
    if (!parse_address(cmdline, "kiln.ip", c.address, &prefix) ||
        !parse_address(cmdline, "kiln.gw", c.gateway, nullptr) || !parse_address(cmdline, "kiln.dns", c.dns, nullptr))
        return false;
    c.netmask = prefix == 0 ? 0 : ~0u << (32 - prefix);
    set_config(c);
    if (!platform::current().start_network_device()) start_virtio_net(cmdline);
    StringView search;
    cmdline.find("kiln.search", search);
    write_resolver_files(c, search);
    // Loopback works with or without a card, so the thread always runs.
    running = sched::spawn_kernel(network_thread, nullptr, "network") != nullptr;
    if (device() && c.address != 0) announce();
    return true;
}

bool enabled() { return running; }

void wake_from_interrupt() {
    work_pending = true;
    sched::wake(wakeup());
    sched::request_preemption();
}

void schedule_timer(uint64_t deadline_ns) {
    platform::IrqGuard guard;
    if (!asleep) {  // awake: it takes its deadline again before it sleeps
        deadline_moved = true;
        return;
    }
    if (sleeping_until == 0 || deadline_ns < sleeping_until) {
        work_pending = true;
        sched::wake(wakeup());
    }
}

void queue_loopback(Packet* packet) {
    platform::IrqGuard guard;
    loopback().push_back(*packet);
    work_pending = true;
    sched::wake(wakeup());
}

void loop_back(Packet* packet) {
    // The packet is an IP datagram at data(): strip nothing, hand it to the thread.
    queue_loopback(packet);
}

}  // namespace kiln::net
