#include "balancer/balancer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <future>
#include <unordered_map>
#include <unordered_set>

#include "balancer/http_exchange.h"
#include "balancer/relay.h"
#include "netns/error.h"

namespace kiln::balancer {

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kConnectAttempts = 3;
// An instance on this host answers a SYN in microseconds, or at once with a reset; one that has
// not answered in this long is frozen or gone, and the next attempt may find another. Generous:
// a guest under nested emulation (scripts/with-kvm) can stall for a second or two and recover.
constexpr auto kDefaultConnectTimeout = std::chrono::milliseconds(5000);
constexpr auto kMaxWait = std::chrono::seconds(30);    // a held connection gives up after this
constexpr auto kTick = std::chrono::milliseconds(10);  // idle and wait checks

// Ends an upstream connection whose response was read whole with a reset, not a FIN: the side
// that closes first keeps the connection in TIME_WAIT for a minute, and one connection per
// request would run the private network out of ephemeral ports within seconds. Nothing is lost:
// the request was sent and its response read to its end.
void end_with_reset(int fd) {
    const linger abort{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
}

// What an epoll event is about: the low two bits of its data, the id above them.
enum Kind : uint64_t { kControl = 0, kListener = 1, kClient = 2, kUpstream = 3 };
uint64_t tag(uint64_t id, Kind kind) { return id << 2 | kind; }

struct Backend {
    std::string instance;
    uint32_t ip = 0;
    std::chrono::milliseconds cooldown{0};
    Clock::time_point last_active = Clock::now();
};

struct Service {
    std::vector<uint64_t> listeners;
    Limits limits;
    std::vector<Backend> backends;  // in the rotation
    std::deque<uint64_t> waiting;   // connections held for a backend
    bool waking = false;
    Clock::time_point scale_out_after;  // a refused scale-out is not asked again at once
    ServiceStats stats;
};

struct ListenerEntry {
    std::string service;
    Listener listener;
};

struct Connection {
    std::string service;
    int destination_port = 0;
    UniqueFd client, upstream;
    std::string backend;                     // the instance it went to, "" while held
    std::unique_ptr<Relay> relay;            // plain TCP, once connected
    std::unique_ptr<HttpExchange> exchange;  // http: the whole life of the client connection
    Clock::time_point accepted = Clock::now();
    bool waited = false;
    int attempts = 0;
    Interest registered;
};

}  // namespace

struct Balancer::Impl {
    Hooks hooks;
    UniqueFd epoll{::epoll_create1(EPOLL_CLOEXEC)};
    UniqueFd control{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
    std::mutex mutex;  // guards `changes` and `stopping`
    std::vector<std::function<void(Impl&)>> changes;
    bool stopping = false;
    std::atomic<uint64_t> wakeups{0};  // returns from epoll_wait

    // Touched only by the balancer's thread.
    std::unordered_map<std::string, Service> services;
    // Those with a backend or a held connection: all the tick has to look at. Most of thousands
    // of services are in standby, with neither.
    std::unordered_set<std::string> busy;
    std::unordered_map<uint64_t, ListenerEntry> listeners;
    std::unordered_map<uint64_t, Connection> connections;
    // Upstream connections still connecting, and when they give up: a backend that drops SYNs (a
    // frozen instance) would otherwise hold its client through the kernel's SYN retries, minutes.
    std::unordered_map<uint64_t, Clock::time_point> connecting;
    std::chrono::milliseconds connect_timeout{kDefaultConnectTimeout};
    uint64_t next_id = 1;

    void run();
    void apply_changes();
    void accept_all(uint64_t listener_id);
    void dispatch(uint64_t id);
    void connect_to(uint64_t id, Connection& c, Backend& backend);
    void on_connected(uint64_t id, Connection& c);
    void on_relay_event(uint64_t id, Connection& c, Relay::Ready ready = {true, true});
    void on_http_event(uint64_t id, Connection& c);
    void connect_failed(uint64_t id, Connection& c);
    void close(uint64_t id, bool failed = false);
    void release_backend(Connection& c);
    void watch(int fd, uint64_t tag, uint32_t events, int op);
    void update_interest(uint64_t id, Connection& c);
    void drain_waiting(Service& service);
    void tick();
    void expire_connects(Clock::time_point now);
    Backend* pick(Service& service);
};

void Balancer::Impl::watch(int fd, uint64_t data, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = data;
    if (::epoll_ctl(epoll.get(), op, fd, &ev) != 0) std::perror("balancer: epoll_ctl");
}

Backend* Balancer::Impl::pick(Service& service) {
    Backend* best = nullptr;
    int64_t best_load = 0;
    for (auto& b : service.backends) {
        const auto& s = service.stats.backends[b.instance];
        if (service.limits.hard > 0 && s.connections >= service.limits.hard) continue;
        // Fewest open connections; among equals, fewest ever, so an idle group is used in turn.
        const bool better = !best || s.connections < best_load ||
                            (s.connections == best_load && s.total < service.stats.backends[best->instance].total);
        if (better) {
            best = &b;
            best_load = s.connections;
        }
    }
    return best;
}

void Balancer::Impl::accept_all(uint64_t listener_id) {
    const auto& entry = listeners.at(listener_id);
    for (;;) {
        UniqueFd client(::accept4(entry.listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        if (!client.valid()) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) std::perror("balancer: accept");
            return;
        }
        const int one = 1;
        ::setsockopt(client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        const uint64_t id = next_id++;
        Connection& c = connections[id];
        c.service = entry.service;
        c.destination_port = entry.listener.destination_port;
        c.client = std::move(client);
        ++services.at(c.service).stats.accepted;
        if (entry.listener.http) {
            // The request head first: each request picks its own backend.
            c.exchange = std::make_unique<HttpExchange>(c.client.get());
            watch(c.client.get(), tag(id, kClient), 0, EPOLL_CTL_ADD);
            on_http_event(id, c);
            continue;
        }
        // No events while held: only a hang-up or error, always reported, tells us it left.
        watch(c.client.get(), tag(id, kClient), 0, EPOLL_CTL_ADD);
        dispatch(id);
    }
}

void Balancer::Impl::dispatch(uint64_t id) {
    Connection& c = connections.at(id);
    Service& service = services.at(c.service);
    if (Backend* backend = pick(service)) {
        connect_to(id, c, *backend);
        return;
    }
    c.waited = true;
    service.waiting.push_back(id);
    busy.insert(c.service);
    if (!service.waking) {
        service.waking = true;
        hooks.wake(c.service, c.accepted);
    }
}

void Balancer::Impl::connect_to(uint64_t id, Connection& c, Backend& backend) {
    auto& s = services.at(c.service).stats.backends[backend.instance];
    ++s.connections;
    ++s.total;
    backend.last_active = Clock::now();
    c.backend = backend.instance;
    c.upstream.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.upstream.valid()) return connect_failed(id, c);
    const int one = 1;
    ::setsockopt(c.upstream.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(c.destination_port));
    to.sin_addr.s_addr = htonl(backend.ip);
    if (::connect(c.upstream.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) {
        watch(c.upstream.get(), tag(id, kUpstream), 0, EPOLL_CTL_ADD);
        return on_connected(id, c);
    }
    if (errno != EINPROGRESS) return connect_failed(id, c);
    connecting[id] = Clock::now() + connect_timeout;
    watch(c.upstream.get(), tag(id, kUpstream), EPOLLOUT, EPOLL_CTL_ADD);
    c.registered.upstream = EPOLLOUT;
}

void Balancer::Impl::on_connected(uint64_t id, Connection& c) {
    connecting.erase(id);
    if (c.waited) {
        const auto now = Clock::now();
        const std::chrono::duration<double> waited = now - c.accepted;
        auto& stats = services.at(c.service).stats;
        stats.wake_latencies.observe(waited.count());
        stats.backends[c.backend].wake_latencies.observe(waited.count());
        if (hooks.woke) hooks.woke(c.service, c.backend, now);
    }
    if (c.exchange) {
        c.exchange->attach(c.upstream.get());
        return on_http_event(id, c);
    }
    c.relay = std::make_unique<Relay>(c.client.get(), c.upstream.get());
    on_relay_event(id, c);
}

void Balancer::Impl::on_http_event(uint64_t id, Connection& c) {
    for (;;) {
        switch (c.exchange->pump()) {
            case HttpExchange::Next::kContinue: return update_interest(id, c);
            case HttpExchange::Next::kNeedBackend:
                update_interest(id, c);  // keeps reading the body while it waits
                return dispatch(id);
            case HttpExchange::Next::kRequestDone:
                release_backend(c);
                end_with_reset(c.upstream.get());
                c.upstream.reset();  // one upstream connection per request; closing leaves the epoll set
                c.registered.upstream = 0;
                c.waited = false;
                c.attempts = 0;
                continue;
            case HttpExchange::Next::kClose: return close(id);
        }
    }
}

void Balancer::Impl::connect_failed(uint64_t id, Connection& c) {
    connecting.erase(id);
    release_backend(c);
    if (c.upstream.valid()) c.upstream.reset();  // closing it also leaves the epoll set
    c.registered.upstream = 0;
    if (++c.attempts >= kConnectAttempts) return close(id, true);
    dispatch(id);
}

void Balancer::Impl::on_relay_event(uint64_t id, Connection& c, Relay::Ready ready) {
    if (!c.relay->pump(ready)) return close(id);
    update_interest(id, c);
}

void Balancer::Impl::update_interest(uint64_t id, Connection& c) {
    Interest want = c.relay ? c.relay->interest() : c.exchange->interest();
    if (c.exchange && !c.exchange->attached()) want.upstream = c.registered.upstream;  // connecting: not ours
    if (want.client != c.registered.client) watch(c.client.get(), tag(id, kClient), want.client, EPOLL_CTL_MOD);
    if (want.upstream != c.registered.upstream)
        watch(c.upstream.get(), tag(id, kUpstream), want.upstream, EPOLL_CTL_MOD);
    c.registered = want;
}

void Balancer::Impl::release_backend(Connection& c) {
    if (c.backend.empty()) return;
    auto service = services.find(c.service);
    if (service != services.end()) {
        auto& s = service->second.stats.backends[c.backend];
        --s.connections;
        for (auto& b : service->second.backends)
            if (b.instance == c.backend) b.last_active = Clock::now();
    }
    c.backend.clear();
}

void Balancer::Impl::close(uint64_t id, bool failed) {
    auto it = connections.find(id);
    if (it == connections.end()) return;
    Connection& c = it->second;
    release_backend(c);
    connecting.erase(id);
    auto service = services.find(c.service);
    if (service != services.end()) {
        auto& waiting = service->second.waiting;
        waiting.erase(std::remove(waiting.begin(), waiting.end(), id), waiting.end());
        if (failed) ++service->second.stats.failed;
    }
    connections.erase(it);  // the sockets close, and leave the epoll set with it
    if (service != services.end()) drain_waiting(service->second);  // a slot may have freed
}

void Balancer::Impl::drain_waiting(Service& service) {
    while (!service.waiting.empty()) {
        Backend* backend = pick(service);
        if (!backend) return;
        const uint64_t id = service.waiting.front();
        service.waiting.pop_front();
        connect_to(id, connections.at(id), *backend);
    }
}

namespace {

// Idle: no connection for its scale-to-zero cooldown, or (autoscale) for the scale-in time while
// the rotation holds more than its minimum.
// What an event on a relayed connection's socket lets move: readable is its own direction
// (client -> upstream for the client), writable the other; a hang-up or error, both.
Relay::Ready ready_directions(Kind kind, uint32_t events) {
    if (events & (EPOLLHUP | EPOLLERR)) return {true, true};
    const bool readable = events & EPOLLIN, writable = events & EPOLLOUT;
    if (kind == kClient) return {readable, writable};
    return {writable, readable};
}

bool idle(const Service& service, const Backend& b, size_t backends, Clock::time_point now) {
    if (service.stats.backends.at(b.instance).connections != 0) return false;
    if (b.cooldown.count() > 0 && now - b.last_active >= b.cooldown) return true;
    const Limits& l = service.limits;
    return l.max_backends > 0 && backends > l.min_backends && now - b.last_active >= l.scale_in_after;
}

// Autoscale: the open connections reach the soft limit of every backend in the rotation.
bool overloaded(const Service& service) {
    const Limits& l = service.limits;
    if (l.max_backends == 0 || l.soft == 0 || service.waking || service.backends.empty() ||
        service.backends.size() >= l.max_backends)
        return false;
    int64_t open = 0;
    for (const auto& b : service.backends) open += service.stats.backends.at(b.instance).connections;
    return open >= l.soft * static_cast<int64_t>(service.backends.size()) && Clock::now() >= service.scale_out_after;
}

}  // namespace

void Balancer::Impl::expire_connects(Clock::time_point now) {
    std::vector<uint64_t> expired;
    for (const auto& [id, deadline] : connecting)
        if (now >= deadline) expired.push_back(id);
    for (uint64_t id : expired) {  // each tries another backend, or the next attempt
        const auto it = connections.find(id);
        if (it == connections.end()) {
            connecting.erase(id);
            continue;
        }
        connect_failed(id, it->second);
    }
}

void Balancer::Impl::tick() {
    const auto now = Clock::now();
    if (!connecting.empty()) expire_connects(now);
    // A copy: closing a held connection may dispatch another, which marks its service busy.
    const std::vector<std::string> names(busy.begin(), busy.end());
    for (const std::string& name : names) {
        const auto found = services.find(name);
        if (found == services.end() || (found->second.backends.empty() && found->second.waiting.empty())) {
            busy.erase(name);
            continue;
        }
        Service& service = found->second;
        // Held too long: the wake did not come.
        while (!service.waiting.empty() && now - connections.at(service.waiting.front()).accepted > kMaxWait)
            close(service.waiting.front(), true);
        for (auto b = service.backends.begin(); b != service.backends.end();) {
            if (!idle(service, *b, service.backends.size(), now)) {
                ++b;
                continue;
            }
            const std::string instance = b->instance;
            b = service.backends.erase(b);
            hooks.idle(name, instance);
        }
        if (overloaded(service)) {
            service.waking = true;
            hooks.wake(name, Clock::time_point{});
        }
    }
}

void Balancer::Impl::apply_changes() {
    uint64_t count;
    while (::read(control.get(), &count, sizeof(count)) > 0) {
    }
    std::vector<std::function<void(Impl&)>> pending;
    {
        std::lock_guard guard(mutex);
        pending.swap(changes);
    }
    for (auto& change : pending) change(*this);
}

void Balancer::Impl::run() {
    watch(control.get(), tag(0, kControl), EPOLLIN, EPOLL_CTL_ADD);
    auto next_tick = Clock::now() + kTick;
    for (;;) {
        {
            std::lock_guard guard(mutex);
            if (stopping) return;
        }
        epoll_event events[64];
        // Rounded up: truncated, the last part of a millisecond before the tick waited 0 ms, again and
        // again, and an idle kilnd spun through ~10% of a core.
        const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_tick - Clock::now());
        const int n = ::epoll_wait(epoll.get(), events, 64, static_cast<int>(std::max<int64_t>(wait.count(), 0)));
        wakeups.fetch_add(1, std::memory_order_relaxed);
        for (int i = 0; i < n; ++i) {
            const uint64_t id = events[i].data.u64 >> 2;
            const auto kind = static_cast<Kind>(events[i].data.u64 & 3);
            if (kind == kControl) {
                apply_changes();
                continue;
            }
            if (kind == kListener) {
                if (listeners.count(id)) accept_all(id);
                continue;
            }
            auto it = connections.find(id);
            if (it == connections.end()) continue;  // closed by an earlier event of this round
            Connection& c = it->second;
            if (c.relay) {
                on_relay_event(id, c, ready_directions(kind, events[i].events));
            } else if (c.exchange && (kind == kClient || c.exchange->attached())) {
                on_http_event(id, c);
            } else if (kind == kUpstream) {
                int error = 0;
                socklen_t size = sizeof(error);
                ::getsockopt(c.upstream.get(), SOL_SOCKET, SO_ERROR, &error, &size);
                if (error != 0) {
                    connect_failed(id, c);
                } else {
                    c.registered.upstream = 0;
                    watch(c.upstream.get(), tag(id, kUpstream), 0, EPOLL_CTL_MOD);
                    on_connected(id, c);
                }
            } else if (events[i].events & (EPOLLHUP | EPOLLERR)) {
                close(id, true);  // the client left before it reached a backend
            }
        }
        if (Clock::now() >= next_tick) {
            tick();
            next_tick = Clock::now() + kTick;
        }
    }
}

Balancer::Balancer(const netns::Namespace& ns, Hooks hooks, std::chrono::milliseconds connect_timeout)
    : impl_(std::make_unique<Impl>()) {
    impl_->hooks = std::move(hooks);
    if (connect_timeout.count() > 0) impl_->connect_timeout = connect_timeout;
    if (!impl_->epoll.valid() || !impl_->control.valid()) throw netns::system_error("balancer: epoll/eventfd");
    std::promise<void> entered;
    const int ns_fd = ns.fd();
    thread_ = std::thread([this, ns_fd, &entered] {
        // Upstream sockets are made on this thread, so it joins the private network for good.
        if (::setns(ns_fd, CLONE_NEWNET) != 0) {
            entered.set_exception(std::make_exception_ptr(netns::system_error("balancer: setns")));
            return;
        }
        entered.set_value();
        impl_->run();
    });
    try {
        entered.get_future().get();
    } catch (...) {
        thread_.join();
        throw;
    }
}

Balancer::~Balancer() {
    {
        std::lock_guard guard(impl_->mutex);
        impl_->stopping = true;
    }
    const uint64_t one = 1;
    if (::write(impl_->control.get(), &one, sizeof(one)) < 0) std::perror("balancer: eventfd");
    thread_.join();
}

void Balancer::post(std::function<void(Impl&)> change) {
    {
        std::lock_guard guard(impl_->mutex);
        impl_->changes.push_back(std::move(change));
    }
    const uint64_t one = 1;
    if (::write(impl_->control.get(), &one, sizeof(one)) < 0) std::perror("balancer: eventfd");
}

void Balancer::add_service(const std::string& service, std::vector<Listener> listeners, Limits limits) {
    auto shared = std::make_shared<std::vector<Listener>>(std::move(listeners));
    post([service, shared, limits](Impl& impl) {
        Service& s = impl.services[service];
        s.limits = limits;
        for (auto& listener : *shared) {
            const uint64_t id = impl.next_id++;
            impl.watch(listener.fd.get(), tag(id, kListener), EPOLLIN, EPOLL_CTL_ADD);
            impl.listeners[id] = ListenerEntry{service, std::move(listener)};
            s.listeners.push_back(id);
        }
    });
}

void Balancer::remove_service(const std::string& service) {
    post([service](Impl& impl) {
        auto it = impl.services.find(service);
        if (it == impl.services.end()) return;
        for (uint64_t id : it->second.listeners) impl.listeners.erase(id);
        impl.services.erase(it);
        for (auto c = impl.connections.begin(); c != impl.connections.end();)
            c = c->second.service == service ? impl.connections.erase(c) : std::next(c);
    });
}

void Balancer::backend_up(const std::string& service, const std::string& instance, uint32_t ip,
                          std::chrono::milliseconds cooldown) {
    post([=](Impl& impl) {
        auto it = impl.services.find(service);
        if (it == impl.services.end()) return;
        Service& s = it->second;
        auto& backends = s.backends;
        backends.erase(
            std::remove_if(backends.begin(), backends.end(), [&](const Backend& b) { return b.instance == instance; }),
            backends.end());
        backends.push_back(Backend{instance, ip, cooldown, Clock::now()});
        impl.busy.insert(service);
        s.stats.backends[instance];  // counted from now on
        s.waking = false;
        impl.drain_waiting(s);
    });
}

void Balancer::backend_down(const std::string& service, const std::string& instance) {
    post([=](Impl& impl) {
        auto it = impl.services.find(service);
        if (it == impl.services.end()) return;
        auto& backends = it->second.backends;
        backends.erase(
            std::remove_if(backends.begin(), backends.end(), [&](const Backend& b) { return b.instance == instance; }),
            backends.end());
        std::vector<uint64_t> orphans;
        for (const auto& [id, c] : impl.connections)
            if (c.service == service && c.backend == instance) orphans.push_back(id);
        for (uint64_t id : orphans) {
            // One still connecting has sent nothing upstream: it goes to another backend, or
            // waits for a wake, as when a connect fails.
            if (impl.connecting.count(id) != 0)
                impl.connect_failed(id, impl.connections.at(id));
            else
                impl.close(id, true);
        }
    });
}

void Balancer::wake_failed(const std::string& service) {
    post([service](Impl& impl) {
        auto it = impl.services.find(service);
        if (it == impl.services.end()) return;
        it->second.waking = false;
        it->second.scale_out_after = Clock::now() + std::chrono::seconds(1);
        if (!it->second.backends.empty()) return;  // they wait for a slot instead
        while (!it->second.waiting.empty()) impl.close(it->second.waiting.front(), true);
    });
}

uint64_t Balancer::wakeups() const { return impl_->wakeups.load(std::memory_order_relaxed); }

ServiceStats Balancer::stats(const std::string& service) {
    auto result = std::make_shared<std::promise<ServiceStats>>();
    auto future = result->get_future();
    post([service, result](Impl& impl) {
        auto it = impl.services.find(service);
        ServiceStats s;
        if (it != impl.services.end()) {
            s = it->second.stats;
            s.queued = static_cast<int64_t>(it->second.waiting.size());
        }
        result->set_value(std::move(s));
    });
    return future.get();
}

}  // namespace kiln::balancer
