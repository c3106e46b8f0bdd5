#include "network/dns_message.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>

namespace kiln::network {

namespace {

struct PacketDeleter {
    void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Packet = std::unique_ptr<ldns_pkt, PacketDeleter>;

// The reply's header and question, copied from the query.
Packet reply_to(const ldns_pkt* query, ldns_pkt_rcode rcode) {
    Packet reply(ldns_pkt_new());
    if (!reply) return nullptr;
    ldns_pkt_set_id(reply.get(), ldns_pkt_id(query));
    ldns_pkt_set_qr(reply.get(), true);
    ldns_pkt_set_aa(reply.get(), true);
    ldns_pkt_set_rd(reply.get(), ldns_pkt_rd(query));
    ldns_pkt_set_opcode(reply.get(), ldns_pkt_get_opcode(query));
    ldns_pkt_set_rcode(reply.get(), static_cast<uint8_t>(rcode));
    if (ldns_pkt_question(query) && ldns_rr_list_rr_count(ldns_pkt_question(query)) == 1) {
        ldns_rr_list* question = ldns_rr_list_clone(ldns_pkt_question(query));
        ldns_rr_list_deep_free(ldns_pkt_question(reply.get()));
        ldns_pkt_set_question(reply.get(), question);
        ldns_pkt_set_qdcount(reply.get(), 1);
    }
    return reply;
}

// "Web.Internal." -> "web" if it is one label under .internal, else nullopt.
std::optional<std::string> instance_label(const ldns_rdf* owner) {
    std::unique_ptr<char, decltype(&free)> text(ldns_rdf2str(owner), &free);
    if (!text) return std::nullopt;
    std::string name = text.get();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::string suffix = std::string(".") + kDomain + ".";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        return std::nullopt;
    std::string label = name.substr(0, name.size() - suffix.size());
    if (label.find('.') != std::string::npos) return std::nullopt;
    return label;
}

std::vector<uint8_t> to_wire(const Packet& reply) {
    uint8_t* wire = nullptr;
    size_t size = 0;
    if (!reply || ldns_pkt2wire(&wire, reply.get(), &size) != LDNS_STATUS_OK) return {};
    std::vector<uint8_t> out(wire, wire + size);
    free(wire);
    return out;
}

}  // namespace

std::vector<uint8_t> dns_answer(const uint8_t* query_bytes, size_t size, const Resolver& resolve) {
    // Only the shape a resolver's query has reaches ldns: answer and authority sections empty,
    // at most one additional record (EDNS's OPT). ldns leaks a record parsing some others (the
    // DNS fuzz target found one with 34,304 additional records), and nothing else is a query.
    constexpr size_t kHeader = 12;
    const auto count = [query_bytes](size_t at) { return query_bytes[at] << 8 | query_bytes[at + 1]; };
    if (size < kHeader || count(6) != 0 || count(8) != 0 || count(10) > 1) return {};
    ldns_pkt* parsed = nullptr;
    if (ldns_wire2pkt(&parsed, query_bytes, size) != LDNS_STATUS_OK) return {};
    Packet query(parsed);
    if (ldns_pkt_qr(query.get())) return {};  // a response: never answer one
    if (ldns_pkt_get_opcode(query.get()) != LDNS_PACKET_QUERY)
        return to_wire(reply_to(query.get(), LDNS_RCODE_NOTIMPL));
    const ldns_rr_list* question = ldns_pkt_question(query.get());
    if (!question || ldns_rr_list_rr_count(question) != 1) return to_wire(reply_to(query.get(), LDNS_RCODE_FORMERR));
    const ldns_rr* asked = ldns_rr_list_rr(question, 0);
    const auto label = instance_label(ldns_rr_owner(asked));
    if (!label) return to_wire(reply_to(query.get(), LDNS_RCODE_REFUSED));
    const auto address = resolve(*label);
    if (!address) return to_wire(reply_to(query.get(), LDNS_RCODE_NXDOMAIN));
    Packet reply = reply_to(query.get(), LDNS_RCODE_NOERROR);
    const ldns_rr_type type = ldns_rr_get_type(asked);
    if (reply && (type == LDNS_RR_TYPE_A || type == LDNS_RR_TYPE_ANY)) {
        // Short TTL: an instance's address is fixed for its life, but names are reused.
        in_addr in{htonl(*address)};
        char ip[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, &in, ip, sizeof(ip));
        const std::string record = *label + "." + kDomain + ". 5 IN A " + ip;
        ldns_rr* rr = nullptr;
        if (ldns_rr_new_frm_str(&rr, record.c_str(), 5, nullptr, nullptr) != LDNS_STATUS_OK) return {};
        ldns_pkt_push_rr(reply.get(), LDNS_SECTION_ANSWER, rr);
    }
    return to_wire(reply);  // another type of a known name: no data, no error
}

}  // namespace kiln::network
