// TCP (RFC 9293): connections, the state machine, retransmission with the RFC 6298 timer, fast
// retransmit and recovery (RFC 5681), window scaling (RFC 7323), delayed ACKs, TIME_WAIT, RST
// handling, simultaneous open and close, listen backlogs. Segments go out with checksum offload
// and TSO when the device has them.
#pragma once

#include <stdint.h>

#include "fs/file.h"
#include "lib/intrusive_list.h"
#include "lib/ref_ptr.h"
#include "lib/vector.h"
#include "net/byte_ring.h"
#include "net/ipv4.h"
#include "net/packet.h"
#include "sched/thread.h"

namespace kiln::net::tcp {

enum class State {
    kClosed,
    kListen,
    kSynSent,
    kSynReceived,
    kEstablished,
    kFinWait1,
    kFinWait2,
    kCloseWait,
    kClosing,
    kLastAck,
    kTimeWait,
};

struct Connection : RefCounted {
    Connection();
    ~Connection() override;

    State state = State::kClosed;
    uint32_t local_ip = 0, remote_ip = 0;
    uint16_t local_port = 0, remote_port = 0;

    // Sending. send_buffer holds every byte from snd_una on, acknowledged or not yet sent.
    uint32_t iss = 0, snd_una = 0, snd_nxt = 0, snd_max = 0;
    uint32_t snd_wnd = 0, snd_wl1 = 0, snd_wl2 = 0;
    uint8_t snd_shift = 0;
    uint16_t mss = 536;
    ByteRing send_buffer;
    bool fin_queued = false;  // the application will send no more
    bool fin_sent = false;
    uint32_t cwnd = 0, ssthresh = 0xffffffff;
    int dup_acks = 0;
    bool in_recovery = false;
    uint32_t recover = 0;

    // Round-trip time (RFC 6298), in nanoseconds; one timed segment at a time (Karn).
    uint64_t srtt = 0, rttvar = 0, rto = 1'000'000'000;
    bool timing = false;
    uint32_t timed_seq = 0;
    uint64_t timed_at = 0;
    uint64_t retransmit_at = 0;  // 0: not armed
    int retries = 0;
    uint64_t persist_at = 0;

    // Receiving.
    uint32_t irs = 0, rcv_nxt = 0;
    uint8_t rcv_shift = 0;
    ByteRing receive_buffer;
    PacketList out_of_order;  // segments after a gap, sorted, payload at data()
    size_t out_of_order_count = 0;
    bool fin_received = false;
    uint64_t ack_at = 0;  // delayed ACK due; 0: none pending
    int segments_unacked = 0;
    uint64_t time_wait_until = 0;
    // tcp.cpp's timer lists: connections with a retransmit, persist or delayed-ACK deadline,
    // and those in TIME_WAIT (in order of expiry), so a tick never walks the idle ones.
    ListNode timer_link;
    ListNode time_wait_link;

    // Listening.
    Connection* listener = nullptr;  // of a child still in SYN_RECEIVED
    Vector<RefPtr<Connection>> accept_queue;
    int backlog = 0;
    int pending_children = 0;

    int error = 0;  // ECONNRESET, ECONNREFUSED, ETIMEDOUT: reported once to the application
    bool no_delay = false;
    bool keep_alive = false;
    bool reuse_address = false;
    bool application_closed = false;  // the socket is gone; the connection finishes on its own

    sched::WaitQueue waiters;    // every change an application may wait for
    fs::File* socket = nullptr;  // for readiness notifications (epoll, poll)

    uint32_t receive_window() const;
    size_t unsent() const;
    size_t readable() const { return receive_buffer.size(); }
    bool can_send() const;
};

// Binds and listens; returns the listener or a negative errno (EADDRINUSE).
int64_t listen(uint32_t local_ip, uint16_t port, int backlog, bool reuse, RefPtr<Connection>& out);
// Starts an active open; the caller waits for ESTABLISHED (or an error) on `waiters`.
int64_t connect(uint32_t local_ip, uint16_t local_port, uint32_t remote_ip, uint16_t remote_port,
                RefPtr<Connection>& out);
// A port nobody uses, for connect and bind(0).
uint16_t ephemeral_port();
bool port_in_use(uint32_t local_ip, uint16_t port);

// Queues bytes for sending; returns how many were taken (0: buffer full), or -EFAULT/-EPIPE.
int64_t send(Connection& c, const fs::IoBuffer& data, size_t size);
// Takes (or with `peek`, copies) received bytes; 0 at end of stream.
int64_t receive(Connection& c, const fs::IoBuffer& data, size_t size, bool peek);
void shutdown_send(Connection& c);
// The application closed its socket: FIN after the queued data, or RST if data was left unread.
void close(Connection& c);
void abort(Connection& c);  // RST now

// Incoming segment (TCP header at data()). Takes ownership.
void receive_tcp(Packet* packet, const Ipv4Info& ip);
// Timers; returns the next deadline (0: none).
uint64_t tick(uint64_t now_ns);

// Readiness for poll/epoll.
uint32_t poll_events(Connection& c);

}  // namespace kiln::net::tcp

namespace kiln::net {
using tcp::receive_tcp;
}
