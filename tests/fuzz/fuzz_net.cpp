// libFuzzer: arbitrary bytes as Ethernet frames into the kernel's receive path (Ethernet, ARP,
// IPv4, ICMP, UDP, TCP with a listener and its connections), on the host.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "net/bytes.h"
#include "net/interface.h"
#include "net/ipv4.h"
#include "net/packet.h"
#include "net/tcp.h"
#include "net/udp.h"
#include "time/clock.h"

namespace {

using namespace kiln;

class CaptureDevice final : public net::NetDevice {
  public:
    const uint8_t* mac() const override { return mac_; }
    void transmit(net::Packet* p) override { net::free_packet(p); }
    bool checksum_offload() const override { return offload_; }
    bool segmentation_offload() const override { return offload_; }
    void poll() override {}
    uint8_t mac_[6] = {0x52, 0x54, 0, 0, 0, 1};
    bool offload_ = false;
};

CaptureDevice device;
RefPtr<net::tcp::Connection> listener;
net::udp::Endpoint* udp_endpoint = nullptr;

void setup() {
    net::Ipv4Config c;
    c.address = 0x0a000005;
    c.netmask = 0xffffff00;
    c.gateway = 0x0a000001;
    net::set_config(c);
    net::attach_device(&device);
    net::tcp::listen(0, 8080, 64, false, listener);
    udp_endpoint = new net::udp::Endpoint;
    udp_endpoint->ref();
    net::udp::bind(*udp_endpoint, 0, 53);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static bool ready = (setup(), true);
    (void)ready;
    // The first byte picks the flavour: checksums trusted (as a device with offload says) or
    // checked; the rest is split into frames at 0xff 0xff markers so one input can carry a
    // conversation (a SYN, then segments for the connection it created).
    if (size == 0) return 0;
    const bool verified = data[0] & 1;
    device.offload_ = data[0] & 2;
    size_t start = 1;
    for (size_t i = 1; i <= size; ++i) {
        if (i < size && !(i + 1 < size && data[i] == 0xff && data[i + 1] == 0xff)) continue;
        const size_t length = i - start;
        net::Packet* p = net::allocate_packet(length, 0);
        if (p && length) std::memcpy(p->put(length), data + start, length);
        // Structure-aware help: mostly give IPv4 frames a right header checksum and length, or
        // the fuzzer would rarely get past the IP layer.
        if (p && (data[0] & 4) && length >= 34 && p->data()[12] == 0x08 && p->data()[13] == 0x00) {
            uint8_t* ip = p->data() + 14;
            const size_t header = (ip[0] & 0xf) * 4u;
            if (header >= 20 && 14 + header <= length) {
                const uint16_t total = static_cast<uint16_t>(length - 14);
                ip[2] = static_cast<uint8_t>(total >> 8);
                ip[3] = static_cast<uint8_t>(total);
                ip[10] = ip[11] = 0;
                const uint16_t sum = net::checksum_fold(net::checksum_add(0, ip, header));
                std::memcpy(ip + 10, &sum, 2);
            }
        }
        if (p) {
            p->checksum_verified = verified;
            net::deliver_frame(p);
        }
        start = i + 2;
        ++i;
    }
    net::tcp::tick(kiln::time::now_ns() + 100'000'000'000ull);  // run every timer
    return 0;
}
