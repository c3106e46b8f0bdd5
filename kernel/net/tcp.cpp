#include "net/tcp.h"

#include "core/errno.h"
#include "fs/devices.h"
#include "fs/pipe.h"
#include "lib/string.h"
#include "lib/utility.h"
#include "net/bytes.h"
#include "net/interface.h"
#include "net/stack.h"
#include "time/clock.h"

namespace kiln::net::tcp {
namespace {

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
constexpr size_t kHeader = 20;
constexpr size_t kBufferLimit = 256 * 1024;
constexpr uint8_t kOurShift = 7;
constexpr uint16_t kOurMss = 1460;
constexpr uint64_t kMinRto = 200'000'000, kMaxRto = 60'000'000'000, kInitialRto = 1'000'000'000;
constexpr uint64_t kDelayedAck = 40'000'000;
constexpr uint64_t kTimeWait = 30'000'000'000;
constexpr size_t kMaxTimeWait = 8192;
constexpr int kMaxRetries = 12;
constexpr size_t kMaxOutOfOrder = 512;
constexpr size_t kMaxTsoPayload = 62 * 1024;

uint64_t clamp_rto(uint64_t rto) { return min(max(rto, kMinRto), kMaxRto); }

bool lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
bool le(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
bool gt(uint32_t a, uint32_t b) { return lt(b, a); }
bool ge(uint32_t a, uint32_t b) { return le(b, a); }

// Connections by 4-tuple in a chained hash table; listeners in a short list.
constexpr size_t kBuckets = 1024;
Vector<RefPtr<Connection>>* buckets = nullptr;
Vector<RefPtr<Connection>>* listeners = nullptr;
constinit uint16_t next_ephemeral = 32768;

// Fibonacci hashing of the whole (address, ports) key, taking the product's high bits: one client
// talking to one port differs only in its port, and each port must still land in its own bucket.
size_t bucket_of(uint32_t rip, uint16_t rport, uint16_t lport) {
    const uint64_t key = (uint64_t{rip} << 32) | (uint32_t{rport} << 16) | lport;
    return static_cast<size_t>((key * 0x9e3779b97f4a7c15ull) >> 40) % kBuckets;
}

void ensure_tables() {
    if (buckets) return;
    buckets = new Vector<RefPtr<Connection>>[kBuckets];
    listeners = new Vector<RefPtr<Connection>>;
}

Connection* lookup(uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport) {
    ensure_tables();
    for (auto& c : buckets[bucket_of(rip, rport, lport)])
        if (c->local_port == lport && c->remote_port == rport && c->remote_ip == rip && c->local_ip == lip)
            return c.get();
    return nullptr;
}

Connection* lookup_listener(uint32_t lip, uint16_t lport) {
    ensure_tables();
    for (auto& c : *listeners)
        if (c->local_port == lport && (c->local_ip == 0 || c->local_ip == lip)) return c.get();
    return nullptr;
}

void insert(Connection& c) {
    ensure_tables();
    (void)buckets[bucket_of(c.remote_ip, c.remote_port, c.local_port)].push_back(RefPtr<Connection>(&c));
}

void remove(Connection& c) {
    auto& b = buckets[bucket_of(c.remote_ip, c.remote_port, c.local_port)];
    for (size_t i = 0; i < b.size(); ++i) {
        if (b[i].get() == &c) {
            b.erase(i);
            return;
        }
    }
}

void notify(Connection& c) {
    sched::wake(c.waiters);
    if (c.socket)
        fs::notify_readiness_changed(*c.socket);
    else
        sched::wake(fs::poll_waiters());
}

// The connections a tick must look at. Under a load of short connections the table fills with
// thousands in TIME_WAIT (kTimeWait each); walking them all at every wake of the network thread
// cost more than the requests. All TIME_WAITs last the same, so their list is in order of expiry.
using TimerList = IntrusiveList<Connection, &Connection::timer_link>;
using TimeWaitList = IntrusiveList<Connection, &Connection::time_wait_link>;

TimerList& timed() {
    static TimerList list;
    return list;
}

TimeWaitList& time_waiting() {
    static TimeWaitList list;
    return list;
}

constinit size_t time_wait_count = 0;

void leave_time_wait(Connection& c) {
    if (!c.time_wait_link.linked()) return;
    TimeWaitList::remove(c);
    --time_wait_count;
}

// Sets one of c's deadlines (retransmit_at, persist_at, ack_at) and puts c on the timer list.
void arm(Connection& c, uint64_t& deadline, uint64_t when) {
    deadline = when;
    if (!c.timer_link.linked()) timed().push_back(c);
    schedule_timer(when);
}

void free_out_of_order(Connection& c) {
    while (Packet* p = c.out_of_order.pop_front()) free_packet(p);
    c.out_of_order_count = 0;
}

// The connection is over: no more timers, no more segments; the socket may still read the
// error or the last bytes.
void finish(Connection& c, int error) {
    if (error && !c.error) c.error = error;
    const bool was_child = c.listener != nullptr && c.state == State::kSynReceived;
    if (was_child) --c.listener->pending_children;
    c.listener = nullptr;
    c.state = State::kClosed;
    c.retransmit_at = c.persist_at = c.ack_at = c.time_wait_until = 0;
    TimerList::remove(c);
    leave_time_wait(c);
    free_out_of_order(c);
    notify(c);
    RefPtr<Connection> keep(&c);  // removal may drop the table's last reference
    remove(c);
}

uint64_t now() { return time::now_ns(); }

// Builds and sends one segment. `payload` bytes come from the send buffer at `seq`.
void send_segment(Connection& c, uint32_t seq, uint8_t flags, size_t payload) {
    const bool syn = flags & kSyn;
    const size_t options = syn ? 8 : 0;
    Packet* p = allocate_packet(kHeader + options + payload);
    if (p == nullptr) return;
    uint8_t* t = p->put(kHeader + options + payload);
    if (payload) c.send_buffer.copy_out(seq - c.snd_una, t + kHeader + options, payload);
    store16(t, c.local_port);
    store16(t + 2, c.remote_port);
    store32(t + 4, seq);
    store32(t + 8, (flags & kAck) ? c.rcv_nxt : 0);
    t[12] = static_cast<uint8_t>(((kHeader + options) / 4) << 4);
    t[13] = flags;
    // The window in a SYN is never scaled (RFC 7323 2.2).
    const uint32_t window = c.receive_window() >> (syn ? 0 : c.rcv_shift);
    store16(t + 14, static_cast<uint16_t>(min<uint32_t>(window, 0xffff)));
    t[16] = t[17] = t[18] = t[19] = 0;
    if (syn) {
        t[20] = 2;  // MSS
        t[21] = 4;
        store16(t + 22, kOurMss);
        t[24] = 1;  // NOP
        t[25] = 3;  // window scale
        t[26] = 3;
        t[27] = c.rcv_shift;
    }
    const size_t length = kHeader + options + payload;
    const uint32_t pseudo = pseudo_header_sum(c.local_ip, c.remote_ip, kProtoTcp, static_cast<uint16_t>(length));
    NetDevice* dev = device();
    const bool local = is_local_address(c.remote_ip);
    if (dev && dev->checksum_offload() && !local) {
        // The device finishes the sum; the header carries the pseudo-header's part.
        const uint16_t partial = static_cast<uint16_t>(~checksum_fold(pseudo));
        memcpy(t + 16, &partial, 2);
        p->needs_checksum = true;
        p->checksum_start = 0;
        p->checksum_offset = 16;
        if (payload > c.mss && dev->segmentation_offload()) p->segment_size = c.mss;
    } else {
        const uint16_t sum = checksum_fold(checksum_add(pseudo, t, length));
        memcpy(t + 16, &sum, 2);
    }
    if (flags & kAck) {
        c.ack_at = 0;
        c.segments_unacked = 0;
    }
    output_ipv4(p, c.local_ip, c.remote_ip, kProtoTcp);
}

void send_ack(Connection& c) { send_segment(c, c.snd_nxt, kAck, 0); }

void send_reset(uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport, uint32_t seq, uint32_t ack, bool with_ack) {
    Connection tmp;
    tmp.local_ip = lip;
    tmp.remote_ip = rip;
    tmp.local_port = lport;
    tmp.remote_port = rport;
    tmp.rcv_nxt = ack;
    tmp.snd_una = seq;
    send_segment(tmp, seq, static_cast<uint8_t>(kRst | (with_ack ? kAck : 0)), 0);
}

void arm_retransmit(Connection& c) {
    if (c.retransmit_at != 0) return;
    arm(c, c.retransmit_at, now() + c.rto);
}

void sample_rtt(Connection& c, uint64_t measured) {
    // RFC 6298 2.2 and 2.3, with alpha 1/8 and beta 1/4.
    if (c.srtt == 0) {
        c.srtt = measured;
        c.rttvar = measured / 2;
    } else {
        const uint64_t delta = c.srtt > measured ? c.srtt - measured : measured - c.srtt;
        c.rttvar = (3 * c.rttvar + delta) / 4;
        c.srtt = (7 * c.srtt + measured) / 8;
    }
    c.rto = clamp_rto(c.srtt + max<uint64_t>(4 * c.rttvar, 1'000'000));
}

}  // namespace

Connection::Connection() : send_buffer(kBufferLimit), receive_buffer(kBufferLimit) {}

Connection::~Connection() {
    TimerList::remove(*this);
    leave_time_wait(*this);
    free_out_of_order(*this);
}

uint32_t Connection::receive_window() const { return static_cast<uint32_t>(receive_buffer.space()); }

size_t Connection::unsent() const {
    const size_t in_flight =
        snd_nxt - snd_una - (fin_sent ? 1 : 0) - (state == State::kSynSent || state == State::kSynReceived ? 1 : 0);
    return send_buffer.size() > in_flight ? send_buffer.size() - in_flight : 0;
}

bool Connection::can_send() const { return state == State::kEstablished || state == State::kCloseWait; }

namespace {

// Sends what the windows allow: data, then the FIN once everything before it has gone.
void output(Connection& c) {
    if (c.state != State::kEstablished && c.state != State::kCloseWait && c.state != State::kFinWait1 &&
        c.state != State::kClosing && c.state != State::kLastAck)
        return;
    NetDevice* dev = device();
    const size_t max_segment =
        (dev && dev->segmentation_offload() && !is_local_address(c.remote_ip)) ? kMaxTsoPayload / c.mss * c.mss : c.mss;
    for (;;) {
        const uint32_t in_flight = c.snd_nxt - c.snd_una;
        const uint32_t window = min(c.snd_wnd, c.cwnd);
        const size_t unsent = c.unsent();
        if (unsent > 0 && in_flight < window) {
            size_t len = min<size_t>(min<size_t>(unsent, window - in_flight), max_segment);
            // Nagle: a small segment waits while data is in flight, unless TCP_NODELAY.
            if (!c.no_delay && len < c.mss && in_flight > 0 && len == unsent && !c.fin_queued) break;
            const bool last = len == unsent;
            send_segment(c, c.snd_nxt, static_cast<uint8_t>(kAck | (last ? kPsh : 0)), len);
            if (!c.timing) {
                c.timing = true;
                c.timed_seq = c.snd_nxt;
                c.timed_at = now();
            }
            c.snd_nxt += static_cast<uint32_t>(len);
            if (gt(c.snd_nxt, c.snd_max)) c.snd_max = c.snd_nxt;
            arm_retransmit(c);
            continue;
        }
        if (unsent == 0 && c.fin_queued && !c.fin_sent) {
            send_segment(c, c.snd_nxt, kFin | kAck, 0);
            c.fin_sent = true;
            c.snd_nxt += 1;
            if (gt(c.snd_nxt, c.snd_max)) c.snd_max = c.snd_nxt;
            if (c.state == State::kEstablished)
                c.state = State::kFinWait1;
            else if (c.state == State::kCloseWait)
                c.state = State::kLastAck;
            arm_retransmit(c);
        }
        break;
    }
    // Data waits on a closed window: probe it now and then (persist timer).
    if (c.unsent() > 0 && c.snd_wnd == 0 && c.snd_nxt == c.snd_una && c.persist_at == 0) {
        arm(c, c.persist_at, now() + c.rto);
    }
}

void enter_time_wait(Connection& c) {
    c.state = State::kTimeWait;
    c.retransmit_at = c.persist_at = 0;
    c.time_wait_until = now() + kTimeWait;
    if (c.time_wait_link.linked()) {
        TimeWaitList::remove(c);  // entered again (a retransmitted FIN): to the end, the latest expiry
    } else if (++time_wait_count > kMaxTimeWait) {
        // As Linux's tcp_max_tw_buckets: the oldest ends early rather than the table growing
        // without bound under a flood of short connections.
        RefPtr<Connection> oldest(time_waiting().front());
        finish(*oldest, 0);
    }
    time_waiting().push_back(c);
    schedule_timer(c.time_wait_until);
    c.send_buffer.release();
    free_out_of_order(c);
    notify(c);
}

void parse_options(Connection& c, const uint8_t* options, size_t length, bool& window_scale, uint8_t& shift) {
    window_scale = false;
    for (size_t i = 0; i < length;) {
        const uint8_t kind = options[i];
        if (kind == 0) break;
        if (kind == 1) {
            ++i;
            continue;
        }
        if (i + 1 >= length || options[i + 1] < 2 || i + options[i + 1] > length) break;  // malformed
        const uint8_t size = options[i + 1];
        if (kind == 2 && size == 4) c.mss = max<uint16_t>(min<uint16_t>(load16(options + i + 2), kOurMss), 64);
        if (kind == 3 && size == 3) {
            window_scale = true;
            shift = min<uint8_t>(options[i + 2], 14);
        }
        i += size;
    }
}

void became_established(Connection& c) {
    c.state = State::kEstablished;
    c.cwnd = 10u * c.mss;  // RFC 6928 initial window
    c.retries = 0;
    c.retransmit_at = 0;
    if (c.listener) {
        Connection* l = c.listener;
        --l->pending_children;
        c.listener = nullptr;
        if (l->state == State::kListen && static_cast<int>(l->accept_queue.size()) < l->backlog) {
            (void)l->accept_queue.push_back(RefPtr<Connection>(&c));
            notify(*l);
        } else {
            abort(c);  // the listener went away or its queue is full
            return;
        }
    }
    notify(c);
}

// In-order payload into the receive buffer, then anything queued out of order that now fits.
void accept_data(Connection& c, const uint8_t* data, size_t length, uint32_t seq) {
    if (lt(seq, c.rcv_nxt)) {  // partly a retransmission of bytes we have
        const uint32_t skip = c.rcv_nxt - seq;
        if (skip >= length) return;
        data += skip;
        length -= skip;
        seq = c.rcv_nxt;
    }
    if (seq != c.rcv_nxt || length == 0) return;
    const int64_t taken = c.receive_buffer.append(data, length);
    if (taken > 0) c.rcv_nxt += static_cast<uint32_t>(taken);
}

void drain_out_of_order(Connection& c) {
    while (Packet* p = c.out_of_order.front()) {
        const uint32_t seq = static_cast<uint32_t>(p->checksum_start) | (uint32_t{p->checksum_offset} << 16);
        if (gt(seq, c.rcv_nxt)) break;
        c.out_of_order.pop_front();
        --c.out_of_order_count;
        accept_data(c, p->data(), p->length, seq);
        free_packet(p);
    }
}

// Keeps a segment that arrived after a gap, in sequence order. The sequence number is stored in
// the packet's (otherwise unused on receive) checksum fields.
void hold_out_of_order(Connection& c, Packet* p, uint32_t seq) {
    if (c.out_of_order_count >= kMaxOutOfOrder) {
        free_packet(p);
        return;
    }
    p->checksum_start = static_cast<uint16_t>(seq);
    p->checksum_offset = static_cast<uint16_t>(seq >> 16);
    Packet* after = nullptr;
    bool duplicate = false;
    c.out_of_order.for_each([&](Packet& q) {
        const uint32_t qseq = static_cast<uint32_t>(q.checksum_start) | (uint32_t{q.checksum_offset} << 16);
        if (qseq == seq) duplicate = true;
        if (!after && gt(qseq, seq)) after = &q;
    });
    if (duplicate) {
        free_packet(p);
        return;
    }
    if (after == nullptr) {
        c.out_of_order.push_back(*p);
    } else {
        ListNode& n = p->link;
        ListNode& b = after->link;
        n.prev = b.prev;
        n.next = &b;
        b.prev->next = &n;
        b.prev = &n;
    }
    ++c.out_of_order_count;
}

void process_ack(Connection& c, uint32_t ack, uint32_t seq, uint32_t window, size_t payload) {
    if (gt(ack, c.snd_max)) {  // acknowledges something never sent
        send_ack(c);
        return;
    }
    const uint32_t old_wnd = c.snd_wnd;
    if (lt(c.snd_wl1, seq) || (c.snd_wl1 == seq && le(c.snd_wl2, ack))) {
        c.snd_wnd = window << c.snd_shift;
        c.snd_wl1 = seq;
        c.snd_wl2 = ack;
        if (c.snd_wnd > 0) c.persist_at = 0;
    }
    if (gt(ack, c.snd_una)) {
        uint32_t acked = ack - c.snd_una;
        // The FIN takes a sequence number but no byte of the buffer.
        const bool fin_acked = c.fin_sent && ack == c.snd_max;
        const uint32_t data_acked =
            min<uint32_t>(acked - (fin_acked ? 1 : 0), static_cast<uint32_t>(c.send_buffer.size()));
        c.send_buffer.consume(data_acked);
        c.snd_una = ack;
        if (lt(c.snd_nxt, c.snd_una)) c.snd_nxt = c.snd_una;
        if (c.timing && gt(ack, c.timed_seq)) {
            sample_rtt(c, now() - c.timed_at);
            c.timing = false;
        }
        c.retries = 0;
        if (c.snd_una == c.snd_max)
            c.retransmit_at = 0;
        else
            arm(c, c.retransmit_at, now() + c.rto);
        // Congestion control (RFC 5681): slow start, avoidance, the end of fast recovery.
        if (c.in_recovery) {
            if (ge(ack, c.recover)) {
                c.in_recovery = false;
                c.cwnd = c.ssthresh;
            } else {
                send_segment(c, c.snd_una, kAck, min<size_t>(c.mss, c.send_buffer.size()));  // partial ACK
            }
        } else if (c.cwnd < c.ssthresh) {
            c.cwnd += min<uint32_t>(acked, c.mss);
        } else {
            c.cwnd += max<uint32_t>(1, c.mss * c.mss / c.cwnd);
        }
        c.dup_acks = 0;
        notify(c);  // room in the send buffer
        if (fin_acked) {
            if (c.state == State::kFinWait1)
                c.state = State::kFinWait2;
            else if (c.state == State::kClosing)
                enter_time_wait(c);
            else if (c.state == State::kLastAck)
                finish(c, 0);
        }
        return;
    }
    // A duplicate ACK: nothing new acknowledged, no data, the same window, data outstanding.
    if (ack == c.snd_una && payload == 0 && (window << c.snd_shift) == old_wnd && c.snd_una != c.snd_max) {
        if (++c.dup_acks == 3 && !c.in_recovery) {
            const uint32_t flight = c.snd_max - c.snd_una;
            c.ssthresh = max<uint32_t>(flight / 2, 2u * c.mss);
            c.cwnd = c.ssthresh + 3u * c.mss;
            c.in_recovery = true;
            c.recover = c.snd_max;
            c.timing = false;  // Karn: no sample from a retransmission
            send_segment(c, c.snd_una, kAck, min<size_t>(c.mss, c.send_buffer.size()));
        } else if (c.dup_acks > 3) {
            c.cwnd += c.mss;
        }
    }
}

void handle_listen(Connection& l, Packet* p, const Ipv4Info& ip, uint16_t sport, uint16_t dport, uint32_t seq,
                   uint32_t ack, uint8_t flags, const uint8_t* options, size_t options_length) {
    free_packet(p);
    if (flags & kRst) return;
    if (flags & kAck) {
        send_reset(ip.destination, dport, ip.source, sport, ack, 0, false);
        return;
    }
    if (!(flags & kSyn)) return;
    if (static_cast<int>(l.accept_queue.size()) >= l.backlog || l.pending_children >= 2 * l.backlog + 16) return;
    auto* c = new Connection;
    c->local_ip = ip.destination;
    c->local_port = dport;
    c->remote_ip = ip.source;
    c->remote_port = sport;
    c->irs = seq;
    c->rcv_nxt = seq + 1;
    bool scale = false;
    uint8_t shift = 0;
    parse_options(*c, options, options_length, scale, shift);
    c->snd_shift = scale ? shift : 0;
    c->rcv_shift = scale ? kOurShift : 0;
    if (!scale) c->receive_buffer.set_limit(65535);  // an unscaled window cannot say more
    fs::random_bytes(&c->iss, sizeof(c->iss));
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->iss + 1;
    c->snd_wl1 = seq;
    c->state = State::kSynReceived;
    c->listener = &l;
    c->no_delay = l.no_delay;
    ++l.pending_children;
    insert(*c);
    send_segment(*c, c->iss, kSyn | kAck, 0);
    arm_retransmit(*c);
}

void handle_syn_sent(Connection& c, Packet* p, uint32_t seq, uint32_t ack, uint8_t flags, uint32_t window,
                     const uint8_t* options, size_t options_length) {
    free_packet(p);
    if ((flags & kAck) && (le(ack, c.iss) || gt(ack, c.snd_max))) {
        if (!(flags & kRst)) send_reset(c.local_ip, c.local_port, c.remote_ip, c.remote_port, ack, 0, false);
        return;
    }
    if (flags & kRst) {
        if (flags & kAck) finish(c, ECONNREFUSED);
        return;
    }
    if (!(flags & kSyn)) return;
    c.irs = seq;
    c.rcv_nxt = seq + 1;
    bool scale = false;
    uint8_t shift = 0;
    parse_options(c, options, options_length, scale, shift);
    c.snd_shift = scale ? shift : 0;
    if (!scale) c.rcv_shift = 0;
    c.snd_wnd = window;  // unscaled in a SYN
    c.snd_wl1 = seq;
    c.snd_wl2 = ack;
    if (flags & kAck) {
        c.snd_una = ack;
        became_established(c);
        send_ack(c);
        output(c);
    } else {  // simultaneous open
        c.state = State::kSynReceived;
        send_segment(c, c.iss, kSyn | kAck, 0);
    }
}

}  // namespace

void receive_tcp(Packet* p, const Ipv4Info& ip) {
    counters().tcp_received++;
    if (p->length < kHeader) {
        counters().tcp_dropped++;
        free_packet(p);
        return;
    }
    uint8_t* t = p->data();
    const size_t header = (t[12] >> 4) * 4u;
    if (header < kHeader || header > p->length ||
        (!p->checksum_verified && checksum_fold(checksum_add(pseudo_header_sum(ip.source, ip.destination, kProtoTcp,
                                                                               static_cast<uint16_t>(p->length)),
                                                             t, p->length)) != 0)) {
        counters().tcp_dropped++;
        free_packet(p);
        return;
    }
    const uint16_t sport = load16(t), dport = load16(t + 2);
    const uint32_t seq = load32(t + 4), ack = load32(t + 8);
    const uint8_t flags = t[13];
    const uint32_t window = load16(t + 14);
    uint8_t options[40];
    const size_t options_length = header - kHeader;
    memcpy(options, t + kHeader, options_length);
    p->pull(header);
    const size_t payload = p->length;

    RefPtr<Connection> hold;
    Connection* c = lookup(ip.destination, dport, ip.source, sport);
    if (c == nullptr) {
        if (Connection* l = lookup_listener(ip.destination, dport); l && l->state == State::kListen) {
            hold = RefPtr<Connection>(l);
            handle_listen(*l, p, ip, sport, dport, seq, ack, flags, options, options_length);
            return;
        }
        free_packet(p);
        if (!(flags & kRst)) {  // nobody here: RST (RFC 9293 3.10.7.1)
            if (flags & kAck)
                send_reset(ip.destination, dport, ip.source, sport, ack, 0, false);
            else
                send_reset(ip.destination, dport, ip.source, sport, 0,
                           seq + static_cast<uint32_t>(payload) + ((flags & kSyn) ? 1 : 0) + ((flags & kFin) ? 1 : 0),
                           true);
        }
        return;
    }
    hold = RefPtr<Connection>(c);
    if (c->state == State::kTimeWait && (flags & (kSyn | kAck | kRst)) == kSyn && gt(seq, c->rcv_nxt)) {
        // A new connection from the same port while this side still waits out the old one
        // (RFC 1122 4.2.2.13): its sequence numbers start beyond the old ones, so no old
        // segment can be taken for new data. Clients reuse ports quickly; answering with the
        // old connection's ACK would cost each such connect a SYN retransmission (1 s).
        finish(*c, 0);
        if (Connection* l = lookup_listener(ip.destination, dport); l && l->state == State::kListen) {
            hold = RefPtr<Connection>(l);
            handle_listen(*l, p, ip, sport, dport, seq, ack, flags, options, options_length);
        } else {
            free_packet(p);
        }
        return;
    }
    if (c->state == State::kSynSent) {
        handle_syn_sent(*c, p, seq, ack, flags, window, options, options_length);
        return;
    }

    // Acceptability (RFC 9293 3.10.7.4, first check).
    const uint32_t rcv_wnd = max<uint32_t>(c->receive_window(), 1);
    const bool acceptable = payload == 0
                                ? (ge(seq, c->rcv_nxt) && lt(seq, c->rcv_nxt + rcv_wnd)) || seq == c->rcv_nxt
                                : lt(seq, c->rcv_nxt + rcv_wnd) && gt(seq + static_cast<uint32_t>(payload), c->rcv_nxt);
    if (!acceptable) {
        free_packet(p);
        if (!(flags & kRst)) send_ack(*c);  // also re-acks retransmitted FINs in TIME_WAIT
        return;
    }
    if (flags & kRst) {
        free_packet(p);
        if (seq == c->rcv_nxt) {
            finish(*c, c->state == State::kSynReceived ? ECONNREFUSED : ECONNRESET);
        } else {
            send_ack(*c);  // challenge ACK (RFC 5961)
        }
        return;
    }
    if (flags & kSyn) {
        free_packet(p);
        send_ack(*c);  // challenge ACK
        return;
    }
    if (!(flags & kAck)) {
        free_packet(p);
        return;
    }
    if (c->state == State::kSynReceived) {
        if (!(gt(ack, c->snd_una) && le(ack, c->snd_max))) {
            free_packet(p);
            send_reset(c->local_ip, c->local_port, c->remote_ip, c->remote_port, ack, 0, false);
            return;
        }
        c->snd_una = ack;
        c->snd_wnd = window << c->snd_shift;
        c->snd_wl1 = seq;
        c->snd_wl2 = ack;
        became_established(*c);
        if (c->state == State::kClosed) {
            free_packet(p);
            return;
        }
    } else {
        process_ack(*c, ack, seq, window, payload);
        if (c->state == State::kClosed) {
            free_packet(p);
            return;
        }
    }

    // Payload.
    bool ack_now = false;
    const bool receiving =
        c->state == State::kEstablished || c->state == State::kFinWait1 || c->state == State::kFinWait2;
    if (payload > 0 && receiving) {
        if (gt(seq, c->rcv_nxt)) {
            hold_out_of_order(*c, p, seq);
            p = nullptr;
            ack_now = true;  // a duplicate ACK tells the sender about the gap
        } else {
            const uint32_t before = c->rcv_nxt;
            accept_data(*c, p->data(), payload, seq);
            const bool had_gap = c->out_of_order_count > 0;
            drain_out_of_order(*c);
            if (c->rcv_nxt != before) notify(*c);
            ack_now = had_gap || ++c->segments_unacked >= 2 || c->rcv_nxt == before;
        }
    } else if (payload > 0) {
        ack_now = true;
    }
    if (p) free_packet(p);

    // FIN, once everything before it is in.
    if ((flags & kFin) && !c->fin_received && seq + static_cast<uint32_t>(payload) == c->rcv_nxt) {
        c->fin_received = true;
        c->rcv_nxt += 1;
        ack_now = true;
        switch (c->state) {
            case State::kEstablished: c->state = State::kCloseWait; break;
            case State::kFinWait1:
                if (c->fin_sent && c->snd_una == c->snd_max)
                    enter_time_wait(*c);
                else
                    c->state = State::kClosing;
                break;
            case State::kFinWait2: enter_time_wait(*c); break;
            default: break;
        }
        notify(*c);
    }
    if (ack_now) {
        send_ack(*c);
    } else if (payload > 0 && c->ack_at == 0) {
        arm(*c, c->ack_at, now() + kDelayedAck);
    }
    output(*c);
}

int64_t listen(uint32_t local_ip, uint16_t port, int backlog, bool reuse, RefPtr<Connection>& out) {
    ensure_tables();
    if (lookup_listener(local_ip, port)) return -EADDRINUSE;
    (void)reuse;
    auto* l = new Connection;
    l->local_ip = local_ip;
    l->local_port = port;
    l->state = State::kListen;
    l->backlog = max(backlog, 1);
    out = RefPtr<Connection>(l);
    (void)listeners->push_back(out);
    return 0;
}

uint16_t ephemeral_port() {
    for (int tries = 0; tries < 28232; ++tries) {
        const uint16_t port = next_ephemeral;
        next_ephemeral = next_ephemeral >= 60999 ? 32768 : static_cast<uint16_t>(next_ephemeral + 1);
        if (!port_in_use(0, port)) return port;
    }
    return 0;
}

bool port_in_use(uint32_t local_ip, uint16_t port) {
    ensure_tables();
    if (lookup_listener(local_ip, port)) return true;
    for (size_t b = 0; b < kBuckets; ++b)
        for (auto& c : buckets[b])
            if (c->local_port == port && c->listener == nullptr && (local_ip == 0 || c->local_ip == local_ip))
                return true;
    return false;
}

int64_t connect(uint32_t local_ip, uint16_t local_port, uint32_t remote_ip, uint16_t remote_port,
                RefPtr<Connection>& out) {
    ensure_tables();
    if (lookup(local_ip, local_port, remote_ip, remote_port)) return -EADDRINUSE;
    auto* c = new Connection;
    c->local_ip = local_ip;
    c->local_port = local_port;
    c->remote_ip = remote_ip;
    c->remote_port = remote_port;
    c->rcv_shift = kOurShift;
    fs::random_bytes(&c->iss, sizeof(c->iss));
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->iss + 1;
    c->state = State::kSynSent;
    out = RefPtr<Connection>(c);
    insert(*c);
    send_segment(*c, c->iss, kSyn, 0);
    arm_retransmit(*c);
    return 0;
}

int64_t send(Connection& c, const fs::IoBuffer& data, size_t size) {
    if (c.error) return -EPIPE;
    if (!c.can_send() || c.fin_queued) return -EPIPE;
    const int64_t n = c.send_buffer.append(data, 0, size);
    if (n > 0) output(c);
    return n;
}

int64_t receive(Connection& c, const fs::IoBuffer& data, size_t size, bool peek) {
    const size_t n = min(size, c.receive_buffer.size());
    if (n == 0) return 0;
    if (c.receive_buffer.copy_out(0, data, 0, n) < 0) return -EFAULT;
    if (peek) return static_cast<int64_t>(n);
    const uint32_t window_before = c.receive_window();
    c.receive_buffer.consume(n);
    // Tell the sender about a window that reopened substantially (receiver-side SWS avoidance).
    if (c.state == State::kEstablished || c.state == State::kFinWait1 || c.state == State::kFinWait2) {
        const uint32_t opened = c.receive_window() - window_before;
        if ((window_before < c.mss && opened >= c.mss) || opened >= c.receive_buffer.limit() / 2) send_ack(c);
    }
    return static_cast<int64_t>(n);
}

void shutdown_send(Connection& c) {
    if (c.fin_queued) return;
    c.fin_queued = true;
    output(c);
}

void close(Connection& c) {
    c.application_closed = true;
    c.socket = nullptr;
    if (c.state == State::kListen) {
        for (auto& child : c.accept_queue) abort(*child);
        c.accept_queue.clear();
        for (size_t i = 0; i < listeners->size(); ++i)
            if ((*listeners)[i].get() == &c) listeners->erase(i--);
        c.state = State::kClosed;
        return;
    }
    if (c.state == State::kSynSent || c.state == State::kClosed) {
        finish(c, 0);
        return;
    }
    // Unread data at close: Linux resets the connection rather than pretend all was read.
    if (c.receive_buffer.size() > 0 && c.state != State::kTimeWait) {
        abort(c);
        return;
    }
    shutdown_send(c);
}

void abort(Connection& c) {
    if (c.state != State::kClosed && c.state != State::kListen && c.state != State::kTimeWait &&
        c.state != State::kSynSent)
        send_reset(c.local_ip, c.local_port, c.remote_ip, c.remote_port, c.snd_nxt, c.rcv_nxt, true);
    finish(c, ECONNRESET);
}

namespace {

// What c's due deadlines ask for: a delayed ACK, a retransmission (or the end), a window probe.
void fire_timers(Connection& c, uint64_t t) {
    if (c.ack_at && t >= c.ack_at) send_ack(c);
    if (c.retransmit_at && t >= c.retransmit_at) {
        if (++c.retries > kMaxRetries) {
            abort(c);
            c.error = ETIMEDOUT;
        } else {
            // RFC 6298 5.4-5.6: back off and resend from the first unacknowledged byte.
            c.rto = clamp_rto(c.rto * 2);
            c.retransmit_at = 0;
            c.timing = false;
            c.in_recovery = false;
            c.dup_acks = 0;
            if (c.state == State::kSynSent) {
                send_segment(c, c.iss, kSyn, 0);
            } else if (c.state == State::kSynReceived) {
                send_segment(c, c.iss, kSyn | kAck, 0);
            } else {
                const uint32_t flight = c.snd_max - c.snd_una;
                c.ssthresh = max<uint32_t>(flight / 2, 2u * c.mss);
                c.cwnd = c.mss;
                c.snd_nxt = c.snd_una;
                c.fin_sent = false;
                output(c);
            }
            arm_retransmit(c);
        }
    }
    if (c.persist_at && t >= c.persist_at) {
        // One byte into the closed window to learn when it opens.
        c.persist_at = 0;
        if (c.unsent() > 0 && c.snd_wnd == 0) {
            send_segment(c, c.snd_nxt, kAck, 1);
            c.persist_at = t + c.rto;
        }
    }
}

}  // namespace

uint64_t tick(uint64_t t) {
    // No ensure_tables(): a connection on the lists below was inserted, and an instance that
    // never uses TCP never allocates its 1,024 buckets.
    uint64_t next = 0;
    auto consider = [&next](uint64_t deadline) {
        if (deadline != 0 && (next == 0 || deadline < next)) next = deadline;
    };
    while (Connection* c = time_waiting().front()) {
        if (c->time_wait_until > t) break;
        RefPtr<Connection> keep(c);  // removal may drop the table's last reference
        finish(*c, 0);
    }
    timed().for_each([&](Connection& c) {
        RefPtr<Connection> keep(&c);
        fire_timers(c, t);
        if (!c.timer_link.linked()) return;  // finished
        if (c.ack_at == 0 && c.retransmit_at == 0 && c.persist_at == 0) {
            TimerList::remove(c);
            return;
        }
        consider(c.ack_at);
        consider(c.retransmit_at);
        consider(c.persist_at);
    });
    if (Connection* c = time_waiting().front()) consider(c->time_wait_until);
    return next;
}

uint32_t poll_events(Connection& c) {
    uint32_t events = 0;
    if (c.state == State::kListen) return c.accept_queue.empty() ? 0 : fs::kPollIn;
    if (c.receive_buffer.size() > 0 || c.fin_received || c.error) events |= fs::kPollIn;
    if (c.can_send() && c.send_buffer.space() > 0 && !c.fin_queued) events |= fs::kPollOut;
    if (c.error) events |= fs::kPollErr;
    if (c.state == State::kClosed || (c.fin_received && c.fin_queued)) events |= fs::kPollHup;
    if (c.fin_received) events |= 0x2000;  // POLLRDHUP
    return events;
}

}  // namespace kiln::net::tcp
