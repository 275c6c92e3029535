// The LMA's registration rules, in-process (no root, no sockets): a LocalMobilityAnchor with a
// recording SessionSink (which refuses what the data plane refuses, and can be told to fail) and
// time the test moves. One case per status code the LMA sends, per RFC 5845 rule, per RFC 8278
// rule, per handoff indicator, and for lifetime expiry and the de-registration hold.
#include "dataplane/session_table.hpp"
#include "lma/lma.hpp"
#include "lma/subscriber_import.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <malloc.h>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <map>
#include <set>
#include <sstream>

using namespace xpmip;
using namespace xpmip::lma;
using namespace xpmip::wire;
using namespace std::chrono_literals;

namespace {

const IpAddress kLma6 = Ipv6Address::parse("2001:db8:ffff::1");
const IpAddress kLma4 = Ipv4Address::parse("192.0.2.1");
const IpAddress kMagA6 = Ipv6Address::parse("2001:db8:ffff::10");
const IpAddress kMagA4 = Ipv4Address::parse("192.0.2.10");
const IpAddress kMagB6 = Ipv6Address::parse("2001:db8:ffff::20");
const IpAddress kMagA4b = Ipv4Address::parse("203.0.113.10");   // MAG A's second WAN link
const IpAddress kRogue6 = Ipv6Address::parse("2001:db8:ffff::99");

struct RecordingSink : SessionSink {
    std::map<std::uint32_t, dataplane::SessionConfig> sessions;
    unsigned upserts = 0;
    std::function<void(const dataplane::SessionConfig&)> fail_next;   // throws, once
    void upsert(const dataplane::SessionConfig& s) override {
        if (auto f = std::exchange(fail_next, nullptr)) {
            f(s);
        }
        dataplane::validate(s);
        sessions[s.id] = s;
        ++upserts;
    }
    void remove(std::uint32_t id) override { sessions.erase(id); }
    std::uint32_t realm_ifindex(std::uint32_t realm) override { return 10 + realm; }
    std::set<std::uint32_t> links_down;   // by ifindex
    bool link_up(std::uint32_t ifindex) override { return !links_down.contains(ifindex); }
    std::set<IpAddress> silent;           // MAG addresses that stopped answering heartbeats
    bool peer_answers(const IpAddress& a) override { return !silent.contains(a); }
    std::vector<dataplane::SessionConfig> held_sessions() override {
        std::vector<dataplane::SessionConfig> out;
        for (const auto& [id, s] : sessions) {
            out.push_back(s);
        }
        return out;
    }
};

std::string lma_yaml(const std::string& extra_mns = "", const std::string& lma_extra = "",
                     const std::string& realm_extra = "") {
    return "instance: unit-lma\n"
           "lma:\n"
           "  addresses: [2001:db8:ffff::1, 192.0.2.1]\n" + lma_extra +
           "interfaces:\n"
           "  - {name: tun0, kind: tunnel}\n"
           "  - {name: core1, kind: core, realm: 1}\n"
           "  - {name: core2, kind: core, realm: 2}\n"
           "timers: {min_delay_before_bce_delete: 10, max_delay_before_new_bce_assign: 1.5, "
           "timestamp_validity_window: 2}\n"
           "labels:\n  - {name: red, id: 1}\n  - {name: blue, id: 2}\n"
           "realms:\n"
           "  - {id: 1, interface: core1, ipv4_pool: 10.0.0.0/16, ipv6_pool: '2001:db8:a::/48'" + realm_extra + "}\n"
           "  - {id: 2, interface: core2, ipv4_pool: 10.0.0.0/30, ipv6_pool: '2001:db8:b::/63', hnp_length: 64}\n"
           "peers:\n"
           "  - {name: mag-a, addresses: [2001:db8:ffff::10, 192.0.2.10, 203.0.113.10]}\n"
           "  - {name: mag-b, addresses: [2001:db8:ffff::20]}\n"
           "mobile_nodes:\n"
           "  - {id: mn1@op.example, realm: 1}\n"
           "  - {id: mn2@op.example, realm: 1}\n"
           "  - {id: v6only@op.example, realm: 1, ipv4: false}\n"
           "  - {id: v4only@op.example, realm: 1, ipv6: false}\n"
           "  - {id: static@op.example, realm: 1, ipv4_home_address: 10.0.200.1, "
           "home_network_prefix: '2001:db8:a:200::/64'}\n"
           "  - {id: keys@op.example, realm: 1, gre: keys-required}\n"
           "  - {id: grereq@op.example, realm: 1, gre: gre-required}\n"
           "  - {id: notreq@op.example, realm: 1, gre: not-required}\n"
           "  - {id: unsup@op.example, realm: 1, gre: unsupported}\n"
           "  - {id: notlv@op.example, realm: 1, tlv_header: false}\n"
           "  - {id: noudp@op.example, realm: 1, udp_encapsulation: false}\n"
           "  - {id: single@op.example, realm: 1, multipath: false}\n"
           "  - {id: small1@op.example, realm: 2}\n"
           "  - {id: small2@op.example, realm: 2}\n"
           "  - {id: small3@op.example, realm: 2}\n" + extra_mns;
}

// A PBU as a MAG sends it, with the options a test leaves or changes.
struct PbuSpec {
    std::string mn = "mn1@op.example";
    IpAddress from = kMagA6;
    IpAddress to = kLma6;
    std::uint16_t seq = 1;
    std::uint16_t lifetime_s = 400;
    std::optional<std::uint8_t> hi = 1;
    std::optional<std::uint8_t> att = 4;
    bool hnp = true;                               // an HNP option (::/0 unless `prefix`)
    std::optional<Ipv6Prefix> prefix;
    bool ipv4 = false;                             // an IPv4 HoA Request (0.0.0.0 unless `hoa`)
    std::optional<Ipv4Address> hoa;
    std::optional<std::uint64_t> timestamp;        // nullopt: the LMA's clock (see Lma::pbu)
    bool no_timestamp = false;
    enum class Gre { None, NoKey, Key } gre = Gre::None;
    std::uint32_t key = 0x1000;
    bool t = false, f = false;
    std::optional<MagMultipathBindingOption> mmb;
    bool mag_id = true;                            // with mmb: the MAG Identifier option
    std::string mag_name = "mag-a.example";
    bool mn_id = true;
    bool access_link = false;                      // the MN's link-layer id and our link-local (our MAG sends both)
    bool bulk = false;                             // RFC 6602: the B flag
    std::optional<std::uint32_t> group;            // ... and a Mobile Node Group Identifier (sub-type 1)
};

struct Lma {
    RecordingSink sink;
    std::uint64_t wall = std::uint64_t{1'700'000'000} << 16;   // 48.16 "now"
    LocalMobilityAnchor lma;
    Clock::time_point now = Clock::time_point{} + 1000s;

    explicit Lma(const std::string& yaml = lma_yaml())
        : lma(parse_lma_config(config::load_string(yaml, "lma.yaml")), sink, [this] { return wall; }) {}

    IncomingPbu pbu(const PbuSpec& p) const {
        IncomingPbu in;
        in.transport = is_ipv4(p.from) ? Transport::Ipv4Udp : Transport::Ipv6;
        in.src = p.from;
        in.dst = p.to;
        in.src_port = 5436;
        in.ifindex = is_ipv4(p.from) && std::get<Ipv4Address>(p.from) == std::get<Ipv4Address>(kMagA4b) ? 3 : 2;
        ProxyBindingUpdate& u = in.pbu;
        u.sequence = p.seq;
        u.lifetime = static_cast<std::uint16_t>(p.lifetime_s / kLifetimeUnitSeconds);
        if (p.t) {
            u.flags |= bu_flag::kTlvHeader;
        }
        if (p.f) {
            u.flags |= bu_flag::kForceUdp;
        }
        if (p.mn_id) {
            u.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, p.mn});
        }
        if (p.hnp) {
            u.options.add(p.prefix ? HomeNetworkPrefixOption{p.prefix->length, p.prefix->address}
                                   : HomeNetworkPrefixOption{});
        }
        if (p.hi) {
            u.options.add(HandoffIndicatorOption{*p.hi});
        }
        if (p.att) {
            u.options.add(AccessTechnologyTypeOption{*p.att});
        }
        if (!p.no_timestamp) {
            u.options.add(TimestampOption{p.timestamp.value_or(wall)});
        }
        if (p.ipv4) {
            u.options.add(Ipv4HomeAddressRequestOption{p.hoa ? std::uint8_t{32} : std::uint8_t{0},
                                                       p.hoa.value_or(Ipv4Address{})});
        }
        if (p.gre != PbuSpec::Gre::None) {
            u.options.add(GreKeyOption{p.gre == PbuSpec::Gre::Key ? std::optional(p.key) : std::nullopt});
        }
        if (p.access_link) {
            u.options.add(MobileNodeLinkLayerIdOption{{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}});
            u.options.add(LinkLocalAddressOption{Ipv6Address::parse("fe80::1")});
        }
        if (p.bulk) {
            u.flags |= bu_flag::kBulk;
        }
        if (p.group) {
            u.options.add(MobileNodeGroupIdentifierOption{kMngSubtypeBulkBindingUpdateGroup, *p.group});
        }
        if (p.mmb) {
            u.options.add(*p.mmb);
            if (p.mag_id) {
                u.options.add(MagIdentifierOption{kMnIdSubtypeNai, p.mag_name});
            }
        }
        return in;
    }
    // Send and expect exactly one PBA back.
    ProxyBindingAcknowledgement send(const PbuSpec& p) {
        auto out = lma.on_pbu(pbu(p), now);
        check_dataplane();
        BOOST_REQUIRE_EQUAL(out.size(), 1u);
        return out[0].pba;
    }
    // The cache keeps no copy of the sessions: what it says the data plane holds (derived from
    // the entry) must be what was written, after every PBU and timer.
    void check_dataplane() {
        std::size_t in_dataplane = 0;
        for (const auto& [id, e] : lma.cache().entries()) {
            if (!e.in_dataplane) {
                continue;
            }
            ++in_dataplane;
            auto it = sink.sessions.find(e.session_id);
            BOOST_REQUIRE_MESSAGE(it != sink.sessions.end(), id << ": session " << e.session_id << " not written");
            BOOST_TEST((it->second == lma.dataplane_session(e)), id << ": the written session differs from the entry's");
        }
        BOOST_TEST(in_dataplane == sink.sessions.size());
    }
    void pass(std::chrono::milliseconds d) {
        now += d;
        wall += static_cast<std::uint64_t>(d.count()) * 65536 / 1000;
    }
    std::vector<OutgoingPba> tick() {
        auto out = lma.on_timer(now);
        check_dataplane();
        return out;
    }
    const BindingCacheEntry* entry(const std::string& mn) const { return lma.cache().find(mn); }
};

std::uint8_t code(Status s) {
    return static_cast<std::uint8_t>(s);
}

MagMultipathBindingOption mmb(std::uint8_t bid, std::uint8_t label, bool o = false, bool b = false) {
    MagMultipathBindingOption m;
    m.if_att = 4;
    m.if_label = label;
    m.binding_id = bid;
    m.overwrite = o;
    m.bulk_reregistration = b;
    return m;
}

#define REQUIRE_STATUS(answer, expected) BOOST_REQUIRE_EQUAL(unsigned((answer).status), unsigned(code(Status::expected)))

} // namespace

BOOST_AUTO_TEST_SUITE(lma_registration)

// ---- RFC 5213 §5.3.1: acceptance and each rejection -----------------------------------------

BOOST_AUTO_TEST_CASE(accepted_over_ipv6_assigns_a_prefix_and_an_address_and_writes_the_session_first) {
    Lma l;
    PbuSpec p;
    p.ipv4 = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.lifetime_seconds().count() == 400);
    BOOST_TEST(pba.has(ba_flag::kProxy));
    const auto* h = pba.options.find<HomeNetworkPrefixOption>();
    BOOST_REQUIRE(h);
    BOOST_TEST(unsigned(h->prefix_length) == 64u);
    BOOST_TEST(Ipv6Prefix::parse("2001:db8:a::/48").contains(h->prefix));
    const auto* r = pba.options.find<Ipv4HomeAddressReplyOption>();
    BOOST_REQUIRE(r);
    BOOST_TEST(unsigned(r->status) == 0u);
    BOOST_TEST(unsigned(r->prefix_length) == 16u);
    BOOST_TEST(pba.options.find<MobileNodeIdentifierOption>()->identifier == "mn1@op.example");
    BOOST_TEST(pba.options.find<TimestampOption>()->value == l.wall, "timestamp echoed");
    BOOST_REQUIRE_EQUAL(l.sink.sessions.size(), 1u);
    const auto& s = l.sink.sessions.begin()->second;
    BOOST_TEST(s.realm == 1u);
    BOOST_TEST(s.mn_ifindex == 11u);
    BOOST_TEST((s.encap == dataplane::Encapsulation::IpInIp));
    BOOST_TEST(l.lma.cache().peer_name(*l.entry("mn1@op.example")) == "mag-a");
}

BOOST_AUTO_TEST_CASE(s154_a_mag_not_in_the_peer_list) {
    Lma l;
    PbuSpec p;
    p.from = kRogue6;
    REQUIRE_STATUS(l.send(p), MagNotAuthorizedForProxyReg);
    BOOST_TEST(l.sink.sessions.empty());
}

BOOST_AUTO_TEST_CASE(s160_no_mn_identifier) {
    Lma l;
    PbuSpec p;
    p.mn_id = false;
    REQUIRE_STATUS(l.send(p), MissingMnIdentifierOption);
}

BOOST_AUTO_TEST_CASE(s153_an_unknown_mobile_node) {
    Lma l;
    PbuSpec p;
    p.mn = "nobody@op.example";
    REQUIRE_STATUS(l.send(p), NotLmaForThisMobileNode);
}

BOOST_AUTO_TEST_CASE(s158_neither_hnp_nor_ipv4_request) {
    Lma l;
    PbuSpec p;
    p.hnp = false;
    REQUIRE_STATUS(l.send(p), MissingHomeNetworkPrefixOption);
}

BOOST_AUTO_TEST_CASE(s161_no_handoff_indicator) {
    Lma l;
    PbuSpec p;
    p.hi.reset();
    REQUIRE_STATUS(l.send(p), MissingHandoffIndicatorOption);
}

BOOST_AUTO_TEST_CASE(s162_no_access_technology_type) {
    Lma l;
    PbuSpec p;
    p.att.reset();
    REQUIRE_STATUS(l.send(p), MissingAccessTechTypeOption);
}

BOOST_AUTO_TEST_CASE(s155_a_requested_prefix_the_mn_does_not_own) {
    Lma l;
    PbuSpec p;
    p.prefix = Ipv6Prefix::parse("2001:db8:a:77::/64");
    REQUIRE_STATUS(l.send(p), NotAuthorizedForHomeNetworkPrefix);
}

BOOST_AUTO_TEST_CASE(static_prefix_and_address_are_granted_when_asked_for_by_name) {
    Lma l;
    PbuSpec p;
    p.mn = "static@op.example";
    p.prefix = Ipv6Prefix::parse("2001:db8:a:200::/64");
    p.ipv4 = true;
    p.hoa = Ipv4Address::parse("10.0.200.1");
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<Ipv4HomeAddressReplyOption>()->address.to_string() == "10.0.200.1");
    BOOST_TEST(l.entry("static@op.example")->hnp->to_string() == "2001:db8:a:200::/64");
}

BOOST_AUTO_TEST_CASE(s159_a_re_registration_naming_another_prefix) {
    Lma l;
    PbuSpec p;
    auto first = l.send(p);
    const auto* h = first.options.find<HomeNetworkPrefixOption>();
    p.seq = 2;
    p.hi = 5;
    p.prefix = Ipv6Prefix{h->prefix, h->prefix_length};
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), Accepted);
    p.seq = 3;
    p.prefix = Ipv6Prefix::parse("2001:db8:a:ff::/64");
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), BcePbuPrefixSetDoNotMatch);
}

BOOST_AUTO_TEST_CASE(s172_ipv6_service_not_authorized) {
    Lma l;
    PbuSpec p;
    p.mn = "v4only@op.example";
    REQUIRE_STATUS(l.send(p), NotAuthorizedForIpv6MobilityService);
}

BOOST_AUTO_TEST_CASE(s170_ipv4_service_not_authorized) {
    Lma l;
    PbuSpec p;
    p.mn = "v6only@op.example";
    p.hnp = false;
    p.ipv4 = true;
    REQUIRE_STATUS(l.send(p), NotAuthorizedForIpv4MobilityService);
}

BOOST_AUTO_TEST_CASE(ipv6_goes_ahead_with_an_ipv4_reply_saying_prohibited) {
    // RFC 5844 §3.3.2: the IPv4 HoA Reply carries 129 and IPv6 service is granted.
    Lma l;
    PbuSpec p;
    p.mn = "v6only@op.example";
    p.ipv4 = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(unsigned(pba.options.find<Ipv4HomeAddressReplyOption>()->status) == 129u);
    BOOST_TEST(!l.sink.sessions.begin()->second.hoa.has_value());
}

BOOST_AUTO_TEST_CASE(s171_a_requested_ipv4_address_the_mn_does_not_own) {
    Lma l;
    PbuSpec p;
    p.ipv4 = true;
    p.hoa = Ipv4Address::parse("10.0.9.9");
    REQUIRE_STATUS(l.send(p), NotAuthorizedForIpv4HomeAddress);
}

BOOST_AUTO_TEST_CASE(s129_the_f_flag_against_policy) {
    Lma l;
    PbuSpec p;
    p.mn = "noudp@op.example";
    p.from = kMagA4;
    p.to = kLma4;
    p.ipv4 = true;
    p.f = true;
    REQUIRE_STATUS(l.send(p), AdministrativelyProhibited);
}

BOOST_AUTO_TEST_CASE(f_flag_accepted_is_udp_encapsulation_with_nat_detection) {
    Lma l;
    PbuSpec p;
    p.from = kMagA4;
    p.to = kLma4;
    p.ipv4 = true;
    p.f = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<NatDetectionOption>() != nullptr);
    BOOST_TEST((l.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Udp));
}

BOOST_AUTO_TEST_CASE(s130_an_exhausted_pool_takes_nothing) {
    Lma l;   // realm 2: 2 prefixes (a /63 of /64s), 1 IPv4 address (a /30 less the router)
    for (const char* mn : {"small1@op.example", "small2@op.example"}) {
        PbuSpec p;
        p.mn = mn;
        REQUIRE_STATUS(l.send(p), Accepted);
    }
    PbuSpec p;
    p.mn = "small3@op.example";
    REQUIRE_STATUS(l.send(p), InsufficientResources);
    BOOST_TEST(l.sink.sessions.size() == 2u);
    BOOST_TEST(l.entry("small3@op.example") == nullptr);
    p.hnp = false;
    p.ipv4 = true;
    REQUIRE_STATUS(l.send(p), Accepted);   // the one IPv4 address
    p.mn = "small2@op.example";
    p.seq = 2;
    p.hi = 5;
    p.hnp = true;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), InsufficientResources);   // none left for small2
}

BOOST_AUTO_TEST_CASE(s130_a_refusing_data_plane_leaves_nothing_taken) {
    Lma l;
    l.sink.fail_next = [](const auto&) { throw dataplane::DataplaneError("map full"); };
    PbuSpec p;
    p.mn = "small1@op.example";
    p.hnp = false;
    p.ipv4 = true;
    REQUIRE_STATUS(l.send(p), InsufficientResources);
    BOOST_TEST(l.entry("small1@op.example") == nullptr);
    BOOST_TEST(l.sink.sessions.empty());
    // What it took came back at once (not into quarantine): realm 2's only address goes to the next MN.
    p.mn = "small2@op.example";
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<Ipv4HomeAddressReplyOption>()->address.to_string() == "10.0.0.2");
}

// ---- RFC 5213 §5.5: timestamps and sequence numbers -----------------------------------------

BOOST_AUTO_TEST_CASE(s156_a_timestamp_outside_the_window_is_answered_with_ours) {
    Lma l;
    PbuSpec p;
    p.timestamp = l.wall - (std::uint64_t{3} << 16);   // 3 s behind, the window is 2 s
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, TimestampMismatch);
    BOOST_TEST(pba.options.find<TimestampOption>()->value == l.wall);
}

BOOST_AUTO_TEST_CASE(s157_a_timestamp_not_newer_than_the_last_accepted) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    p.seq = 2;
    p.hi = 5;
    auto pba = l.send(p);   // the same timestamp again
    REQUIRE_STATUS(pba, TimestampLowerThanPrevAccepted);
    BOOST_TEST(pba.options.find<TimestampOption>()->value == l.wall, "ours");
}

BOOST_AUTO_TEST_CASE(s135_sequence_number_mode_refuses_an_old_number_with_the_last_accepted) {
    Lma l;
    PbuSpec p;
    p.no_timestamp = true;
    p.seq = 100;
    REQUIRE_STATUS(l.send(p), Accepted);
    p.seq = 99;
    p.hi = 5;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, SequenceNumberOutOfWindow);
    BOOST_TEST(pba.sequence == 100u, "RFC 6275 §6.1.8: the last accepted sequence number");
    p.seq = 101;
    REQUIRE_STATUS(l.send(p), Accepted);
}

BOOST_AUTO_TEST_CASE(sequence_numbers_of_another_mag_are_not_compared) {
    Lma l;
    PbuSpec p;
    p.no_timestamp = true;
    p.seq = 100;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec q = p;
    q.from = kMagB6;
    q.seq = 5;
    q.hi = 3;
    REQUIRE_STATUS(l.send(q), Accepted);
    BOOST_TEST(to_string(l.entry("mn1@op.example")->proxy_coa) == "2001:db8:ffff::20");
}

// ---- RFC 5845: GRE ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rfc5845_3_1_option_with_a_key_gets_an_uplink_key_and_a_keyed_session) {
    Lma l;
    PbuSpec p;
    p.gre = PbuSpec::Gre::Key;
    p.key = 0xd0d0;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    const auto* g = pba.options.find<GreKeyOption>();
    BOOST_REQUIRE(g && g->key);
    BOOST_TEST(*g->key != 0u);
    const auto& s = l.sink.sessions.begin()->second;
    BOOST_TEST((s.encap == dataplane::Encapsulation::Gre));
    BOOST_TEST(s.gre_keys);
    BOOST_TEST(s.paths[0].key_downlink == 0xd0d0u);
    BOOST_TEST(s.paths[0].key_uplink == *g->key);
}

BOOST_AUTO_TEST_CASE(rfc5845_3_2_option_without_key_is_gre_without_keys) {
    Lma l;
    PbuSpec p;
    p.gre = PbuSpec::Gre::NoKey;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_REQUIRE(pba.options.find<GreKeyOption>());
    BOOST_TEST(!pba.options.find<GreKeyOption>()->key.has_value());
    BOOST_TEST(!l.sink.sessions.begin()->second.gre_keys);
}

BOOST_AUTO_TEST_CASE(rfc5845_3_3_the_uplink_key_stays_for_re_registration_and_handoff) {
    Lma l;
    PbuSpec p;
    p.gre = PbuSpec::Gre::Key;
    const auto key = *l.send(p).options.find<GreKeyOption>()->key;
    p.seq = 2;
    p.hi = 5;
    l.pass(10ms);
    BOOST_TEST(*l.send(p).options.find<GreKeyOption>()->key == key, "re-registration");
    PbuSpec q = p;
    q.from = kMagB6;
    q.hi = 3;
    q.key = 0x2222;
    l.pass(10ms);
    BOOST_TEST(*l.send(q).options.find<GreKeyOption>()->key == key, "handoff to another MAG");
    BOOST_TEST(l.sink.sessions.begin()->second.paths[0].key_downlink == 0x2222u, "the new MAG's downlink key");
}

BOOST_AUTO_TEST_CASE(rfc5845_3_3_uplink_keys_are_unique_and_never_0) {
    Lma l;
    std::set<std::uint32_t> keys;
    for (const char* mn : {"mn1@op.example", "mn2@op.example", "v6only@op.example", "keys@op.example"}) {
        PbuSpec p;
        p.mn = mn;
        p.gre = PbuSpec::Gre::Key;
        keys.insert(*l.send(p).options.find<GreKeyOption>()->key);
    }
    BOOST_TEST(keys.size() == 4u);
    BOOST_TEST(!keys.count(0));
}

BOOST_AUTO_TEST_CASE(rfc5845_5_1_163_keys_required_without_option_or_without_key) {
    Lma l;
    PbuSpec p;
    p.mn = "keys@op.example";
    REQUIRE_STATUS(l.send(p), GreKeyOptionRequired);
    p.gre = PbuSpec::Gre::NoKey;
    p.seq = 2;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), GreKeyOptionRequired);
    p.gre = PbuSpec::Gre::Key;
    p.seq = 3;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), Accepted);
}

BOOST_AUTO_TEST_CASE(rfc5845_5_1_gre_required_takes_either_form_but_not_none) {
    Lma l;
    PbuSpec p;
    p.mn = "grereq@op.example";
    REQUIRE_STATUS(l.send(p), GreKeyOptionRequired);
    p.gre = PbuSpec::Gre::NoKey;
    p.seq = 2;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), Accepted);
}

BOOST_AUTO_TEST_CASE(rfc5845_5_1_163_overlapping_addresses_behind_one_mag_need_keys) {
    Lma l;
    l.sink.fail_next = [](const auto&) {
        throw dataplane::KeyConflictError("key-less tunnel entry taken", dataplane::MapId::TunnelKeyless);
    };
    PbuSpec p;
    p.ipv4 = true;
    REQUIRE_STATUS(l.send(p), GreKeyOptionRequired);
    BOOST_TEST(l.entry("mn1@op.example") == nullptr);
}

BOOST_AUTO_TEST_CASE(rfc5845_5_1_status_2_when_policy_does_not_require_gre) {
    Lma l;
    PbuSpec p;
    p.mn = "notreq@op.example";
    p.gre = PbuSpec::Gre::Key;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, GreKeyOptionNotRequired);
    BOOST_TEST(pba.options.find<GreKeyOption>() == nullptr, "no option with status 2");
    BOOST_TEST((l.sink.sessions.begin()->second.encap == dataplane::Encapsulation::IpInIp));
}

BOOST_AUTO_TEST_CASE(rfc5845_unsupported_policy_answers_like_an_lma_without_rfc5845) {
    Lma l;
    PbuSpec p;
    p.mn = "unsup@op.example";
    p.from = kMagA4;
    p.to = kLma4;
    p.gre = PbuSpec::Gre::Key;
    p.t = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<GreKeyOption>() == nullptr);
    BOOST_TEST(!pba.has(ba_flag::kTlvHeader));
}

BOOST_AUTO_TEST_CASE(rfc5845_3_3_handoff_without_option_on_a_gre_entry) {
    Lma l;
    PbuSpec p;
    p.mn = "keys@op.example";
    p.gre = PbuSpec::Gre::Key;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec q = p;
    q.from = kMagB6;
    q.hi = 3;
    q.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(q), GreKeyOptionRequired);   // policy needs keys
    Lma m;
    PbuSpec a;
    a.gre = PbuSpec::Gre::Key;
    REQUIRE_STATUS(m.send(a), Accepted);
    PbuSpec b = a;
    b.from = kMagB6;
    b.hi = 3;
    b.gre = PbuSpec::Gre::None;
    m.pass(10ms);
    auto pba = m.send(b);                              // policy allows: no GRE from now on
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<GreKeyOption>() == nullptr);
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::IpInIp));
}

BOOST_AUTO_TEST_CASE(rfc5845_7_3_t_echoed_over_udp_when_the_tlv_format_is_supported) {
    Lma l;
    PbuSpec p;
    p.from = kMagA4;
    p.to = kLma4;
    p.ipv4 = true;
    p.gre = PbuSpec::Gre::Key;
    p.t = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.has(ba_flag::kTlvHeader));
    BOOST_TEST((l.sink.sessions.begin()->second.encap == dataplane::Encapsulation::UdpTlvGre));
}

BOOST_AUTO_TEST_CASE(rfc5845_7_2_no_t_in_the_pba_unless_in_the_pbu) {
    Lma l;
    PbuSpec p;
    p.from = kMagA4;
    p.to = kLma4;
    p.ipv4 = true;
    p.gre = PbuSpec::Gre::Key;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(!pba.has(ba_flag::kTlvHeader));
    BOOST_TEST((l.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Gre));
}

BOOST_AUTO_TEST_CASE(rfc5845_7_4_status_3_is_gre_without_udp_when_tlv_is_not_supported) {
    Lma l;
    PbuSpec p;
    p.mn = "notlv@op.example";
    p.from = kMagA4;
    p.to = kLma4;
    p.ipv4 = true;
    p.gre = PbuSpec::Gre::Key;
    p.t = true;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, GreTunnelingButTlvHeaderNotSupported);
    BOOST_TEST(!pba.has(ba_flag::kTlvHeader));
    BOOST_TEST((l.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Gre));
}

// ---- RFC 5213 §5.4.1: the handoff indicator -------------------------------------------------

BOOST_AUTO_TEST_CASE(hi_1_then_hi_5_refreshes_the_same_session) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    const auto sid = l.entry("mn1@op.example")->session_id;
    p.seq = 2;
    p.hi = 5;
    l.pass(1s);
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->session_id == sid);
    BOOST_TEST(l.sink.sessions.size() == 1u);
}

BOOST_AUTO_TEST_CASE(hi_2_and_3_another_mag_takes_the_session_in_place) {
    for (std::uint8_t hi : {std::uint8_t{2}, std::uint8_t{3}}) {
        Lma l;
        PbuSpec p;
        const auto hnp = l.send(p).options.find<HomeNetworkPrefixOption>()->prefix;
        PbuSpec q = p;
        q.from = kMagB6;
        q.hi = hi;
        l.pass(10ms);
        auto pba = l.send(q);
        REQUIRE_STATUS(pba, Accepted);
        BOOST_TEST((pba.options.find<HomeNetworkPrefixOption>()->prefix == hnp), "the same prefix");
        BOOST_TEST(to_string(l.sink.sessions.begin()->second.paths[0].remote) == "2001:db8:ffff::20");
    }
}

BOOST_AUTO_TEST_CASE(hi_4_waits_for_the_previous_mags_deregistration) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec q = p;
    q.from = kMagB6;
    q.hi = 4;
    l.pass(10ms);
    BOOST_TEST(l.lma.on_pbu(l.pbu(q), l.now).empty(), "answer deferred");
    PbuSpec dereg = p;
    dereg.seq = 2;
    dereg.lifetime_s = 0;
    l.pass(10ms);
    auto out = l.lma.on_pbu(l.pbu(dereg), l.now);
    BOOST_REQUIRE_EQUAL(out.size(), 2u);   // the de-registration's PBA and the waiting one's
    BOOST_TEST(to_string(out[1].dst) == "2001:db8:ffff::20");
    REQUIRE_STATUS(out[1].pba, Accepted);
    BOOST_TEST(!l.entry("mn1@op.example")->deregistered);
}

BOOST_AUTO_TEST_CASE(hi_4_without_deregistration_is_answered_after_max_delay) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec q = p;
    q.from = kMagB6;
    q.hi = 4;
    l.pass(10ms);
    q.timestamp = l.wall;
    BOOST_TEST(l.lma.on_pbu(l.pbu(q), l.now).empty());
    l.pass(1400ms);
    BOOST_TEST(l.tick().empty(), "not before MaxDelayBeforeNewBCEAssign (1.5 s)");
    l.pass(200ms);
    auto out = l.tick();
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    REQUIRE_STATUS(out[0].pba, Accepted);
    BOOST_TEST(to_string(l.entry("mn1@op.example")->proxy_coa) == "2001:db8:ffff::20");
}

// ---- RFC 5213 §5.3.3 and §5.3.5: expiry, de-registration hold -------------------------------

BOOST_AUTO_TEST_CASE(lifetime_expiry_removes_the_session_and_frees_its_prefix_after_the_rest) {
    Lma l;
    PbuSpec p;
    p.lifetime_s = 8;
    REQUIRE_STATUS(l.send(p), Accepted);
    l.pass(7s);
    l.tick();
    BOOST_TEST(l.sink.sessions.size() == 1u);
    l.pass(1s);
    l.tick();
    BOOST_TEST(l.sink.sessions.empty());
    BOOST_TEST(l.entry("mn1@op.example") == nullptr);
}

BOOST_AUTO_TEST_CASE(deregistration_stops_forwarding_at_once_and_holds_the_entry_min_delay) {
    Lma l;
    PbuSpec p;
    p.gre = PbuSpec::Gre::Key;
    const auto key = *l.send(p).options.find<GreKeyOption>()->key;
    PbuSpec d = p;
    d.seq = 2;
    d.lifetime_s = 0;
    d.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    BOOST_TEST(l.sink.sessions.empty(), "forwarding stops now");
    BOOST_REQUIRE(l.entry("mn1@op.example"));
    BOOST_TEST(l.entry("mn1@op.example")->deregistered);
    // A new MAG within MinDelayBeforeBCEDelete gets the same key (RFC 5845 §3.3).
    PbuSpec q = p;
    q.from = kMagB6;
    q.seq = 1;
    q.hi = 2;
    l.pass(5s);
    BOOST_TEST(*l.send(q).options.find<GreKeyOption>()->key == key);
}

BOOST_AUTO_TEST_CASE(a_deregistered_entry_is_deleted_after_min_delay) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec d = p;
    d.seq = 2;
    d.lifetime_s = 0;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    l.pass(9s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example") != nullptr);
    l.pass(1s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example") == nullptr);
}

// The `xpmip_bindings` gauge counts entries by (state, realm, peer, encapsulation) as they change.
BOOST_AUTO_TEST_CASE(binding_counts_follow_registration_deregistration_and_deletion) {
    Lma l;
    const control::BindingClass reg{"registered", "1", "mag-a", "ipip"}, held{"deregistered", "1", "mag-a", "ipip"};
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    const auto c = l.lma.cache().binding_class(*l.entry("mn1@op.example"));
    BOOST_TEST(c.state + "/" + c.realm + "/" + c.peer + "/" + c.encap == "registered/1/mag-a/ipip");
    p.mn = "mn2@op.example";
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec r;
    r.mn = "rogue@op.example";
    REQUIRE_STATUS(l.send(r), NotLmaForThisMobileNode);
    auto& counts = l.lma.binding_classes();
    BOOST_TEST(counts.count(reg) == 2, "two registered, the rejection counts nowhere");
    PbuSpec d = p;
    d.seq = 2;
    d.lifetime_s = 0;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    BOOST_TEST(counts.count(reg) == 1);
    BOOST_TEST(counts.count(held) == 1);
    l.pass(10s);
    l.tick();
    BOOST_TEST(counts.count(held) == 0, "deleted after MinDelayBeforeBCEDelete");
    BOOST_TEST(counts.count(reg) == 1);
}

BOOST_AUTO_TEST_CASE(a_deregistration_from_a_mag_the_mn_left_keeps_the_binding) {
    Lma l;
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    PbuSpec q = p;
    q.from = kMagB6;
    q.hi = 3;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(q), Accepted);
    PbuSpec d = p;
    d.seq = 2;
    d.lifetime_s = 0;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    BOOST_TEST(!l.entry("mn1@op.example")->deregistered);
    BOOST_TEST(l.sink.sessions.size() == 1u);
}

// ---- RFC 8278 ------------------------------------------------------------------------------

struct Multipath : Lma {
    Multipath() : Lma(lma_yaml("", "  multipath: true\n")) {}
    PbuSpec path(std::uint8_t bid, std::uint16_t seq = 1) {
        PbuSpec p;
        p.from = bid == 1 ? kMagA4 : kMagA4b;
        p.to = kLma4;
        p.ipv4 = true;
        p.gre = PbuSpec::Gre::Key;
        p.key = 0x100u + bid;
        p.seq = seq;
        p.mmb = mmb(bid, bid);
        return p;
    }
};

BOOST_AUTO_TEST_CASE(rfc8278_two_bindings_one_session_with_a_path_and_key_each) {
    Multipath l;
    auto a = l.send(l.path(1));
    REQUIRE_STATUS(a, Accepted);
    BOOST_TEST(a.options.find<MagMultipathBindingOption>() != nullptr, "option 63 echoed");
    BOOST_TEST(a.options.find<MagIdentifierOption>() == nullptr, "without option 64 (§4.4 MUST)");
    l.pass(10ms);
    auto b = l.send(l.path(2));
    REQUIRE_STATUS(b, Accepted);
    BOOST_TEST(*a.options.find<GreKeyOption>()->key != *b.options.find<GreKeyOption>()->key);
    const auto& s = l.sink.sessions.begin()->second;
    BOOST_REQUIRE_EQUAL(s.paths.size(), 2u);
    BOOST_TEST(s.paths[0].bid == 1u);
    BOOST_TEST(s.paths[1].bid == 2u);
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.size() == 2u);
}

// A link losing carrier takes its paths down in the data plane and back up (RFC 8278 §3: the
// flows move), written once per change; a refused write leaves the entry as the data plane is.
BOOST_AUTO_TEST_CASE(rfc8278_paths_follow_their_links_carrier) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    REQUIRE_STATUS(l.send(l.path(2)), Accepted);
    const auto& s = l.sink.sessions.begin()->second;
    const unsigned writes = l.sink.upserts;
    l.lma.on_link_change();   // nothing changed
    BOOST_TEST(l.sink.upserts == writes);

    l.sink.links_down = {3};  // the link of binding 2 (kMagA4b)
    l.lma.on_link_change();
    l.check_dataplane();
    BOOST_TEST(l.sink.upserts == writes + 1);
    BOOST_TEST(s.paths[0].up);
    BOOST_TEST(!s.paths[1].up);
    l.lma.on_link_change();
    BOOST_TEST(l.sink.upserts == writes + 1, "written once per change");

    l.sink.links_down.clear();
    l.sink.fail_next = [](const auto&) { throw dataplane::DataplaneError("map busy"); };
    l.lma.on_link_change();
    l.check_dataplane();      // the entry still says what the data plane holds: path 2 down
    BOOST_TEST(!s.paths[1].up);
    l.lma.on_link_change();   // and the next change notice writes it
    l.check_dataplane();
    BOOST_TEST(s.paths[1].up);
}

// RFC 5847 at the LMA (issue 17): a MAG address that stopped answering heartbeats takes the
// paths toward it down (the flows move to the MN's other paths), and back up when it answers.
BOOST_AUTO_TEST_CASE(rfc5847_paths_toward_a_silent_mag_go_down_and_come_back) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    REQUIRE_STATUS(l.send(l.path(2)), Accepted);
    const auto& s = l.sink.sessions.begin()->second;
    l.sink.silent = {kMagA4b};
    l.lma.on_link_change();
    l.check_dataplane();
    BOOST_TEST(s.paths[0].up);
    BOOST_TEST(!s.paths[1].up, "the path toward the silent address is down");
    l.sink.silent.clear();
    l.lma.on_link_change();
    BOOST_TEST(s.paths[1].up);
}

// RFC 5847 §6.2 at the LMA (issue 17): when a MAG's Restart Counter changes, its bindings it does
// not register again go after mag_restart_grace; those it registered since the restart stay.
BOOST_AUTO_TEST_CASE(rfc5847_a_restarted_mags_stale_bindings_go_after_the_grace) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example"}), Accepted);
    l.pass(5s);
    const auto restarted_after = l.now;   // its last answer with the old counter
    l.pass(1s);
    auto again = PbuSpec{.mn = "mn2@op.example"};   // the MAG registers mn2 again after its restart
    again.seq = 2;
    again.hi = 5;
    REQUIRE_STATUS(l.send(again), Accepted);
    l.pass(1s);
    BOOST_TEST(l.lma.on_mag_restart(kMagA6, restarted_after, l.now) == 1u, "mn1 only");
    l.pass(5s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example") != nullptr, "within the grace (10 s)");
    l.pass(6s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example") == nullptr, "gone after the grace");
    BOOST_TEST(l.entry("mn2@op.example") != nullptr, "registered since the restart: kept");
    BOOST_TEST(l.sink.sessions.size() == 1u);
}

// RFC 5846 §8.1: a per-MN revocation: P set, a per-MN trigger, the MN's MN-ID and HNP, toward
// its proxy CoA; the binding stays until the BRA (§8.1 "revocation in progress"), and a success
// removes it with its session (§6.2.2).
BOOST_AUTO_TEST_CASE(rfc5846_a_per_mn_revocation_ends_with_its_bra) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example"}), Accepted);
    const auto hnp = l.entry("mn1@op.example")->hnp;
    auto out = l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn1@op.example"}, l.now);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    const auto& bri = out[0].bri;
    BOOST_TEST((out[0].dst == kMagA6));
    BOOST_TEST((out[0].src == kLma6));
    BOOST_TEST(bri.has(br_flag::kProxy));
    BOOST_TEST(!bri.has(br_flag::kGlobal));
    BOOST_TEST(unsigned(bri.trigger) == 1u, "Administrative Reason by default");
    BOOST_TEST(bri.options.find<MobileNodeIdentifierOption>()->identifier == "mn1@op.example");
    BOOST_REQUIRE(bri.options.find<HomeNetworkPrefixOption>() != nullptr);
    BOOST_TEST((bri.options.find<HomeNetworkPrefixOption>()->prefix == hnp->address));
    BOOST_TEST(l.entry("mn1@op.example") != nullptr, "kept until the BRA");
    BOOST_CHECK_THROW(l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn1@op.example"}, l.now),
                      std::invalid_argument);   // (in progress)
    BindingRevocationAcknowledgement bra;
    bra.sequence = bri.sequence;
    BOOST_TEST(!l.lma.on_bra(kMagB6, bra, l.now), "from another address: not ours");
    BOOST_TEST(l.entry("mn1@op.example") != nullptr);
    bra.sequence = static_cast<std::uint16_t>(bri.sequence + 1);
    BOOST_TEST(!l.lma.on_bra(kMagA6, bra, l.now), "another sequence number: dropped");
    bra.sequence = bri.sequence;
    BOOST_TEST(l.lma.on_bra(kMagA6, bra, l.now));
    l.check_dataplane();
    BOOST_TEST(l.entry("mn1@op.example") == nullptr, "removed on success");
    BOOST_TEST(l.entry("mn2@op.example") != nullptr);
    BOOST_TEST(l.sink.sessions.size() == 1u);
    BOOST_TEST(!l.lma.on_bra(kMagA6, bra, l.now), "answered once");
}

// §8.1: all of a peer's bindings is one G BRI, Per-Peer Policy, no options, per proxy CoA.
BOOST_AUTO_TEST_CASE(rfc5846_a_peer_revocation_is_global_without_options) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example", .from = kMagA4, .to = kLma4, .hnp = false, .ipv4 = true}),
                   Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "v6only@op.example", .from = kMagB6}), Accepted);
    auto out = l.lma.revoke({.scope = RevocationRequest::Scope::Peer, .target = "mag-a"}, l.now);
    BOOST_REQUIRE_EQUAL(out.size(), 2u);   // its IPv6 and its IPv4 proxy CoA
    for (const auto& o : out) {
        BOOST_TEST(o.bri.has(br_flag::kGlobal));
        BOOST_TEST(unsigned(o.bri.trigger) == 128u);
        BOOST_TEST(o.bri.options.items.empty());
    }
    const auto v4 = is_ipv4(out[0].dst) ? out[0] : out[1];
    BOOST_TEST((v4.transport == Transport::Ipv4Udp));
    BOOST_TEST(v4.dst_port == 5436u, "the PBU's source port");
    for (const auto& o : out) {
        BindingRevocationAcknowledgement bra;
        bra.sequence = o.bri.sequence;
        bra.flags = o.bri.flags;
        BOOST_TEST(l.lma.on_bra(o.dst, bra, l.now));
    }
    l.check_dataplane();
    BOOST_TEST(l.lma.cache().size() == 1u, "mag-b's binding stays");
    BOOST_CHECK_THROW(l.lma.revoke({.scope = RevocationRequest::Scope::Peer, .target = "nobody"}, l.now),
                      std::invalid_argument);
    BOOST_CHECK_THROW(l.lma.revoke({.scope = RevocationRequest::Scope::Peer, .target = "mag-b", .trigger = 1}, l.now),
                      std::invalid_argument);   // a per-MN trigger for a peer
    BOOST_CHECK_THROW(l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "v6only@op.example",
                                    .trigger = 128},
                                   l.now),
                      std::invalid_argument);   // a global trigger for one MN
    BOOST_CHECK_THROW(l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn1@op.example"}, l.now),
                      std::invalid_argument);   // no binding any more
}

// §6.3, §11: unanswered, the BRI goes again after InitMINDelayBRIs (1 s), BRIMaxRetriesNumber (1)
// times, the wait doubled up to MAX_BRACK_TIMEOUT (2 s); then the LMA cleans up.
BOOST_AUTO_TEST_CASE(rfc5846_an_unanswered_bri_is_sent_again_then_cleaned_up) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    auto out = l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn1@op.example"}, l.now);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST((l.lma.next_revocation_deadline() == l.now + 1s));
    BOOST_TEST(l.lma.on_revocation_timer(l.now + 999ms).empty());
    auto again = l.lma.on_revocation_timer(l.now + 1s);
    BOOST_REQUIRE_EQUAL(again.size(), 1u);
    BOOST_TEST((again[0].bri == out[0].bri), "the same BRI, the same sequence number");
    BOOST_TEST((l.lma.next_revocation_deadline() == l.now + 3s), "the wait doubled to 2 s");
    BOOST_TEST(l.entry("mn1@op.example") != nullptr);
    BOOST_TEST(l.lma.on_revocation_timer(l.now + 3s).empty(), "no third send");
    l.check_dataplane();
    BOOST_TEST(l.entry("mn1@op.example") == nullptr, "cleaned up after the last wait");
    BOOST_TEST(!l.lma.next_revocation_deadline().has_value());
}

// §8.1: a PBU accepted during the revocation ends it for that MN; a 132 keeps the binding.
BOOST_AUTO_TEST_CASE(rfc5846_a_pbu_during_revocation_or_a_132_keeps_the_binding) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example"}), Accepted);
    auto r1 = l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn1@op.example"}, l.now);
    auto r2 = l.lma.revoke({.scope = RevocationRequest::Scope::MobileNode, .target = "mn2@op.example"}, l.now);
    l.pass(100ms);
    auto again = PbuSpec{.mn = "mn1@op.example"};
    again.seq = 2;
    again.hi = 5;
    REQUIRE_STATUS(l.send(again), Accepted);
    BindingRevocationAcknowledgement ok;
    ok.sequence = r1[0].bri.sequence;
    BOOST_TEST(l.lma.on_bra(kMagA6, ok, l.now));
    BOOST_TEST(l.entry("mn1@op.example") != nullptr, "registered again meanwhile: kept");
    BindingRevocationAcknowledgement attached;
    attached.sequence = r2[0].bri.sequence;
    attached.status = bra_status::kRevocationFailedMnIsAttached;
    BOOST_TEST(l.lma.on_bra(kMagA6, attached, l.now));
    BOOST_TEST(l.entry("mn2@op.example") != nullptr, "132: the MN is attached there, kept");
    BOOST_TEST(!l.lma.next_revocation_deadline().has_value());
    l.check_dataplane();
}

// Issue 19: a subscriber gone from the configuration (SIGHUP) has its binding revoked, and so
// has a binding of a MAG no longer configured; the others stay.
BOOST_AUTO_TEST_CASE(rfc5846_a_reload_revokes_what_it_no_longer_authorizes) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example"}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "v6only@op.example", .from = kMagB6}), Accepted);
    BOOST_TEST(l.lma.revoke_unauthorized(l.now).empty(), "nothing changed: nothing revoked");
    std::string yaml = lma_yaml();
    const std::string mn2 = "  - {id: mn2@op.example, realm: 1}\n";
    yaml.erase(yaml.find(mn2), mn2.size());
    const std::string mag_b = "  - {name: mag-b, addresses: [2001:db8:ffff::20]}\n";
    yaml.erase(yaml.find(mag_b), mag_b.size());
    l.lma.reload(parse_lma_config(config::load_string(yaml, "lma.yaml")));
    auto out = l.lma.revoke_unauthorized(l.now);
    BOOST_REQUIRE_EQUAL(out.size(), 2u);
    std::set<std::string> revoked;
    for (const auto& o : out) {
        revoked.insert(o.bri.options.find<MobileNodeIdentifierOption>()->identifier);
        BOOST_TEST(unsigned(o.bri.trigger) == 1u, "Administrative Reason");
    }
    BOOST_TEST((revoked == std::set<std::string>{"mn2@op.example", "v6only@op.example"}));
    BOOST_TEST(l.lma.revoke_unauthorized(l.now).empty(), "in progress: not again");
}

// RFC 6602 at the LMA, rule by rule.
namespace {
// §5.1.3: a bulk PBU names the group alone: B clear, no MN-ID, HNP, HI or ATT.
PbuSpec bulk_pbu(std::uint32_t group, std::uint16_t seq, std::uint16_t lifetime_s = 400) {
    PbuSpec p{.mn_id = false, .group = group};
    p.seq = seq;
    p.lifetime_s = lifetime_s;
    p.hnp = false;
    p.hi.reset();
    p.att.reset();
    return p;
}
} // namespace

// §5.2.2: B with the group option joins the MAG's group: the PBA has B and our group's id;
// without B, neither.
BOOST_AUTO_TEST_CASE(rfc6602_a_registration_asking_for_bulk_support_joins_the_group) {
    Lma l;
    auto joined = l.send(PbuSpec{.mn = "mn1@op.example", .bulk = true, .group = 7});
    REQUIRE_STATUS(joined, Accepted);
    BOOST_TEST(joined.has(ba_flag::kBulk));
    BOOST_REQUIRE(joined.options.find<MobileNodeGroupIdentifierOption>() != nullptr);
    BOOST_TEST(joined.options.find<MobileNodeGroupIdentifierOption>()->subtype == kMngSubtypeBulkBindingUpdateGroup);
    BOOST_TEST(joined.options.find<MobileNodeGroupIdentifierOption>()->group >= 2u, "our own group id");
    auto plain = l.send(PbuSpec{.mn = "mn2@op.example"});
    BOOST_TEST(!plain.has(ba_flag::kBulk));
    BOOST_TEST(plain.options.find<MobileNodeGroupIdentifierOption>() == nullptr);
    Lma off(lma_yaml("", "  bulk_registration: false\n"));
    auto refused = off.send(PbuSpec{.mn = "mn1@op.example", .bulk = true, .group = 7});
    REQUIRE_STATUS(refused, Accepted);
    BOOST_TEST(!refused.has(ba_flag::kBulk), "bulk support off: B clear (§5.2.2)");
}

// §5.2.3: one PBU naming the group extends every binding of it; the PBA echoes the group.
BOOST_AUTO_TEST_CASE(rfc6602_a_bulk_pbu_refreshes_every_binding_of_the_group) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example", .bulk = true, .group = 7}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example", .bulk = true, .group = 7}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "v6only@op.example"}), Accepted);   // not in the group
    l.pass(300s);
    auto pba = l.send(bulk_pbu(7, 50));
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.sequence == 50u);
    BOOST_TEST(pba.lifetime * kLifetimeUnitSeconds == 400u);
    BOOST_REQUIRE(pba.options.find<MobileNodeGroupIdentifierOption>() != nullptr);
    BOOST_TEST(pba.options.find<MobileNodeGroupIdentifierOption>()->group == 7u, "the PBU's id copied");
    BOOST_TEST(pba.options.find<TimestampOption>() != nullptr);
    l.pass(150s);   // 450 s after the registrations: past their first lifetime
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example") != nullptr, "refreshed by the bulk PBU");
    BOOST_TEST(l.entry("mn2@op.example") != nullptr);
    BOOST_TEST(l.entry("v6only@op.example") == nullptr, "not in the group: expired");
}

// §5.2.3 rejections: an unknown group, individual identifiers, another MAG's group, a stranger;
// nothing changes for the group's bindings.
BOOST_AUTO_TEST_CASE(rfc6602_175_for_an_unknown_group_or_individual_identifiers) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example", .bulk = true, .group = 7}), Accepted);
    const auto expires = l.entry("mn1@op.example")->expires;
    l.pass(10s);
    REQUIRE_STATUS(l.send(bulk_pbu(8, 60)), InvalidMobileNodeGroupIdentifier);
    auto with_mn = bulk_pbu(7, 61);
    with_mn.mn_id = true;
    REQUIRE_STATUS(l.send(with_mn), InvalidMobileNodeGroupIdentifier);
    auto with_key = bulk_pbu(7, 62);
    with_key.gre = PbuSpec::Gre::Key;
    REQUIRE_STATUS(l.send(with_key), InvalidMobileNodeGroupIdentifier);
    auto other_mag = bulk_pbu(7, 63);
    other_mag.from = kMagB6;
    REQUIRE_STATUS(l.send(other_mag), InvalidMobileNodeGroupIdentifier);   // groups are per MAG
    auto stranger = bulk_pbu(7, 64);
    stranger.from = Ipv6Address::parse("2001:db8:ffff::99");
    REQUIRE_STATUS(l.send(stranger), MagNotAuthorizedForProxyReg);
    BOOST_TEST((l.entry("mn1@op.example")->expires == expires), "no lifetime changed");
}

// §5.2.2: a registration without B leaves the group; a de-registration does too. A bulk PBU
// with lifetime 0 de-registers the whole group (RFC 6602 has none: our extension).
BOOST_AUTO_TEST_CASE(rfc6602_leaving_the_group_and_bulk_deregistration) {
    Lma l;
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn1@op.example", .bulk = true, .group = 7}), Accepted);
    REQUIRE_STATUS(l.send(PbuSpec{.mn = "mn2@op.example", .bulk = true, .group = 7}), Accepted);
    l.pass(1s);
    auto again = PbuSpec{.mn = "mn2@op.example"};   // B clear: out of the group
    again.seq = 2;
    again.hi = 5;
    REQUIRE_STATUS(l.send(again), Accepted);
    l.pass(1s);
    auto end = l.send(bulk_pbu(7, 70, 0));
    REQUIRE_STATUS(end, Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->deregistered, "the group's binding de-registered");
    BOOST_TEST(!l.entry("mn2@op.example")->deregistered, "left the group: untouched");
    l.check_dataplane();
    REQUIRE_STATUS(l.send(bulk_pbu(7, 71)), InvalidMobileNodeGroupIdentifier);   // the group is empty now
}

BOOST_AUTO_TEST_CASE(rfc8278_180_without_the_mag_identifier) {
    Multipath l;
    auto p = l.path(1);
    p.mag_id = false;
    auto pba = l.send(p);
    REQUIRE_STATUS(pba, CannotSupportMultipathBinding);
    BOOST_TEST(pba.options.find<MagMultipathBindingOption>() != nullptr, "63 echoed with 180");
}

BOOST_AUTO_TEST_CASE(rfc8278_180_for_an_mn_not_authorized_for_multipath) {
    Multipath l;
    auto p = l.path(1);
    p.mn = "single@op.example";
    REQUIRE_STATUS(l.send(p), CannotSupportMultipathBinding);
}

BOOST_AUTO_TEST_CASE(rfc8278_180_for_a_binding_of_another_encapsulation) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    auto p = l.path(2);
    p.gre = PbuSpec::Gre::None;   // IP-in-IP beside a keyed GRE binding
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), CannotSupportMultipathBinding);
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rfc8278_o_flag_replaces_the_other_bindings) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    l.pass(10ms);
    REQUIRE_STATUS(l.send(l.path(2)), Accepted);
    auto p = l.path(2, 2);
    p.mmb = mmb(2, 2, true);
    p.hi = 5;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.size() == 1u);
    BOOST_TEST(l.sink.sessions.begin()->second.paths.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rfc8278_b_flag_refreshes_every_binding) {
    Multipath l;
    auto a = l.path(1);
    a.lifetime_s = 40;
    auto b = l.path(2);
    b.lifetime_s = 40;
    REQUIRE_STATUS(l.send(a), Accepted);
    REQUIRE_STATUS(l.send(b), Accepted);
    l.pass(30s);
    auto bulk = l.path(2, 2);
    bulk.lifetime_s = 40;
    bulk.hi = 5;
    bulk.mmb = mmb(2, 2, false, true);
    REQUIRE_STATUS(l.send(bulk), Accepted);
    l.pass(20s);   // 50 s after binding 1 was registered: alive through the bulk refresh
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.size() == 2u);
}

BOOST_AUTO_TEST_CASE(rfc8278_deregistering_one_bid_keeps_the_others) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    REQUIRE_STATUS(l.send(l.path(2)), Accepted);
    auto d = l.path(2, 2);
    d.lifetime_s = 0;
    d.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    const auto* e = l.entry("mn1@op.example");
    BOOST_TEST(!e->deregistered);
    BOOST_TEST(e->multipath->bindings.size() == 1u);
    BOOST_TEST(l.sink.sessions.begin()->second.paths.size() == 1u);
    BOOST_TEST(l.sink.sessions.begin()->second.paths[0].bid == 1u);
}

// Issue 17: a MAG that de-registers one path (a SIGTERM) and registers it again within
// MinDelayBeforeBCEDelete gets the binding's uplink key back (RFC 5213 §5.3.5, RFC 5845 §3.3).
BOOST_AUTO_TEST_CASE(rfc8278_a_deregistered_bid_keeps_its_key_min_delay) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    REQUIRE_STATUS(l.send(l.path(2)), Accepted);
    const auto key = l.entry("mn1@op.example")->multipath->bindings.at(2).key_uplink;
    BOOST_TEST_REQUIRE(key.has_value());
    auto d = l.path(2, 2);
    d.lifetime_s = 0;
    d.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->multipath->held_keys.count(2) == 1u);
    l.pass(5s);
    l.tick();
    REQUIRE_STATUS(l.send(l.path(2, 3)), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.at(2).key_uplink.value_or(0) == *key,
               "the same key within the hold");
    BOOST_TEST(l.entry("mn1@op.example")->multipath->held_keys.empty());
    l.check_dataplane();

    // Past the hold, the key goes back to the pool (and a third registration gets another).
    auto d2 = l.path(2, 4);
    d2.lifetime_s = 0;
    d2.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d2), Accepted);
    l.pass(11s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example")->multipath->held_keys.empty(), "released when the hold ends");
}

BOOST_AUTO_TEST_CASE(rfc8278_deregistering_the_last_bid_deregisters_the_session) {
    Multipath l;
    REQUIRE_STATUS(l.send(l.path(1)), Accepted);
    auto d = l.path(1, 2);
    d.lifetime_s = 0;
    d.gre = PbuSpec::Gre::None;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(d), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->deregistered, "held MinDelayBeforeBCEDelete, then deleted");
    BOOST_TEST(l.sink.sessions.empty(), "forwarding stops at once");
}

BOOST_AUTO_TEST_CASE(rfc8278_a_binding_expires_alone) {
    Multipath l;
    auto a = l.path(1);
    a.lifetime_s = 100;
    auto b = l.path(2);
    b.lifetime_s = 8;
    REQUIRE_STATUS(l.send(a), Accepted);
    REQUIRE_STATUS(l.send(b), Accepted);
    l.pass(9s);
    l.tick();
    BOOST_TEST(l.entry("mn1@op.example")->multipath->bindings.size() == 1u);
    BOOST_TEST(l.sink.sessions.begin()->second.paths.size() == 1u);
}

BOOST_AUTO_TEST_CASE(rfc8278_a_legacy_lma_ignores_options_63_and_64) {
    Lma l(lma_yaml("", "  multipath: false\n"));
    Multipath spec;
    auto pba = l.send(spec.path(1));
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST(pba.options.find<MagMultipathBindingOption>() == nullptr);
    BOOST_TEST(!l.entry("mn1@op.example")->multipath);
}


// ---- Memory (issue 16: at most 400 B of agent memory per binding at a million) -----------

namespace {

struct NullSink : SessionSink {
    void upsert(const dataplane::SessionConfig&) override {}
    void remove(std::uint32_t) override {}
    std::uint32_t realm_ifindex(std::uint32_t realm) override { return 10 + realm; }
    std::vector<dataplane::SessionConfig> held_sessions() override { return {}; }
};

std::size_t heap_in_use() {
    return mallinfo2().uordblks;
}

} // namespace

// What the heap holds per binding: the full session of the registration benchmark (IPv4/UDP, an
// HNP, an IPv4 HoA and GRE keys) with the options our MAG sends (link-layer id and link-local),
// NAIs long enough to be on the heap, counted after a warm-up so one-off costs are left out.
BOOST_AUTO_TEST_CASE(a_binding_costs_at_most_400_bytes_of_heap) {
    NullSink sink;
    std::uint64_t wall = std::uint64_t{1'700'000'000} << 16;
    LocalMobilityAnchor lma(parse_lma_config(config::load_string(
                                lma_yaml() + "mobile_node_domains:\n  - {domain: bench.example, realm: 1}\n", "lma.yaml")),
                            sink, [&] { return wall; });
    Lma shape;   // only to build PBUs
    const Clock::time_point now = Clock::time_point{} + 1000s;
    auto register_mns = [&](unsigned from, unsigned to) {
        for (unsigned i = from; i < to; ++i) {
            PbuSpec p;
            p.mn = "mn" + std::to_string(100000 + i) + "@bench.example";
            p.from = kMagA4;
            p.to = kLma4;
            p.ipv4 = true;
            p.gre = PbuSpec::Gre::Key;
            p.key = 0x10000 + i;
            p.access_link = true;
            p.timestamp = wall;
            auto out = lma.on_pbu(shape.pbu(p), now);
            BOOST_REQUIRE_EQUAL(out.size(), 1u);
            BOOST_REQUIRE_EQUAL(unsigned(out[0].pba.status), 0u);
            wall += 1;
        }
    };
    constexpr unsigned kWarmUp = 2000, kCounted = 20000;
    register_mns(0, kWarmUp);
    const std::size_t before = heap_in_use();
    register_mns(kWarmUp, kWarmUp + kCounted);
    const double per_binding = double(heap_in_use() - before) / kCounted;
    BOOST_TEST_MESSAGE("heap per binding: " << per_binding << " B");
    BOOST_TEST(lma.cache().size() == kWarmUp + kCounted);
    BOOST_TEST(per_binding <= 400.0);
}

BOOST_AUTO_TEST_SUITE_END()

// The subscriber store (README "Subscribers"): profiles the LMA looks up per registration, changes
// it sees from the next PBU on, static addresses its pools never hand out, and imports that write
// all or nothing.
BOOST_AUTO_TEST_SUITE(subscriber_store)

namespace {

// A store in a directory of its own, removed after the case.
struct StoreDir {
    std::filesystem::path dir;
    StoreDir() {
        char tmpl[] = "/tmp/xpmip-unit-store-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~StoreDir() { std::filesystem::remove_all(dir); }
    std::string file() const { return (dir / "subscribers.lmdb").string(); }
    std::string yaml(const std::string& extra = "") const {
        return "subscriber_store: " + file() + "\n" + lma_yaml() + extra;
    }
};

MobileNodeProfile profile(const std::string& id, std::uint32_t realm) {
    MobileNodeProfile m;
    m.id = id;
    m.realm = realm;
    return m;
}

void put(SubscriberStore& store, const MobileNodeProfile& m) {
    SubscriberStore::Writer w(store);
    w.put(m);
    w.commit();
}

ImportResult import_text(SubscriberStore& store, const LmaConfig& c, const std::string& text,
                         SubscriberFormat f = SubscriberFormat::Csv, bool replace = false) {
    std::istringstream in(text);
    return import_subscribers(store, c, in, ImportOptions{.format = f, .replace = replace});
}

}   // namespace

BOOST_AUTO_TEST_CASE(a_profile_authorizes_from_the_next_pbu_and_its_removal_too) {
    StoreDir d;
    Lma l(d.yaml());
    SubscriberStore writer(d.file());   // another handle on the file, as `xpmip subscribers` has
    PbuSpec p;
    p.mn = "sub1@op.example";
    REQUIRE_STATUS(l.send(p), NotLmaForThisMobileNode);
    auto m = profile("sub1@op.example", 1);
    m.home_network_prefix = Ipv6Prefix::parse("2001:db8:a:77::/64");
    put(writer, m);
    p.seq = 2;
    l.pass(10ms);
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("sub1@op.example")->hnp->to_string() == "2001:db8:a:77::/64", "its static prefix");
    PbuSpec q;
    q.mn = "sub2@op.example";
    put(writer, profile("sub2@op.example", 2));
    REQUIRE_STATUS(l.send(q), Accepted);
    BOOST_TEST(l.entry("sub2@op.example")->realm == 2u);
    {
        SubscriberStore::Writer w(writer);
        BOOST_TEST(w.remove("sub2@op.example"));
        w.commit();
    }
    q.mn = "sub3@op.example";
    put(writer, profile("sub3@op.example", 1));
    {
        SubscriberStore::Writer w(writer);
        BOOST_TEST(w.remove("sub3@op.example"));
        w.commit();
    }
    REQUIRE_STATUS(l.send(q), NotLmaForThisMobileNode);
}

BOOST_AUTO_TEST_CASE(the_configuration_entry_wins_over_the_store_and_the_store_over_a_domain) {
    StoreDir d;
    Lma l(d.yaml("mobile_node_domains:\n  - {domain: op2.example, realm: 2}\n"));
    SubscriberStore writer(d.file());
    put(writer, profile("mn1@op.example", 2));        // listed in mobile_nodes with realm 1
    put(writer, profile("x@op2.example", 1));         // its domain says realm 2
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("mn1@op.example")->realm == 1u);
    p.mn = "x@op2.example";
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("x@op2.example")->realm == 1u);
    p.mn = "y@op2.example";
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("y@op2.example")->realm == 2u);
}

BOOST_AUTO_TEST_CASE(pools_never_hand_out_a_stored_static_address) {
    StoreDir d;
    Lma l(d.yaml());   // realm 2: 2001:db8:b::/64 and 2001:db8:b:1::/64, nothing else
    SubscriberStore writer(d.file());
    auto st = profile("static2@op.example", 2);
    st.home_network_prefix = Ipv6Prefix::parse("2001:db8:b::/64");
    put(writer, st);
    st.id = "static3@op.example";
    st.home_network_prefix = Ipv6Prefix::parse("2001:db8:b:1::/64");
    put(writer, st);
    PbuSpec p;
    p.mn = "small1@op.example";
    REQUIRE_STATUS(l.send(p), InsufficientResources);   // both prefixes are someone's
    p.mn = "static3@op.example";
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.entry("static3@op.example")->hnp->to_string() == "2001:db8:b:1::/64");
    {
        SubscriberStore::Writer w(writer);
        w.remove("static2@op.example");
        w.commit();
    }
    // Removed from the store, its prefix stays reserved in this LMA (it found it static).
    p.mn = "small2@op.example";
    REQUIRE_STATUS(l.send(p), InsufficientResources);
}

BOOST_AUTO_TEST_CASE(a_record_round_trips_and_an_unknown_version_is_refused) {
    auto m = profile("r@op.example", 7);
    m.ipv4 = false;
    m.multipath = false;
    m.home_network_prefix = Ipv6Prefix::parse("2001:db8:9::/56");
    m.ipv4_home_address = Ipv4Address::parse("10.9.8.7");
    m.policy.gre = GrePolicy::KeysRequired;
    m.policy.tlv_header = false;
    m.policy.udp = true;
    const auto rec = encode_subscriber(m);
    MobileNodeProfile back;
    decode_subscriber(rec, back);
    back.id = m.id;
    BOOST_TEST((subscriber_fields(back) == subscriber_fields(m)));
    auto bad = rec;
    bad[0] = 2;
    BOOST_CHECK_THROW(decode_subscriber(bad, back), std::runtime_error);
    BOOST_CHECK_THROW(decode_subscriber(rec.substr(1), back), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(an_import_with_a_bad_record_writes_nothing_and_names_record_and_field) {
    StoreDir d;
    const auto cfg = parse_lma_config(config::load_string(d.yaml(), "lma.yaml"));
    SubscriberStore store(d.file());
    auto r = import_text(store, cfg, "id,realm\nok@x,1\n");
    BOOST_TEST(r.errors.empty());
    BOOST_TEST(store.size() == 1u);
    const std::string bad = "id,realm,gre,ipv4_home_address\n"
                            "a@x,1,,\n"
                            "b@x,9,,\n"                      // record 2, line 3
                            "c@x,1,sometimes,\n"             // record 3, line 4
                            "d@x,1,,10.0.0.1\n"              // the realm's default router
                            "a@x,2,,\n"                      // the same id as record 1
                            "e@x,1,,10.0.200.1\n"            // static@op.example's, in the YAML
                            "f@x,1\n";                       // too few fields
    r = import_text(store, cfg, bad);
    const std::string all = [&] {
        std::string s;
        for (const auto& e : r.errors) {
            s += e + "\n";
        }
        return s;
    }();
    BOOST_TEST_MESSAGE(all);
    BOOST_TEST(all.find("record 2 (line 3): realm: realm 9 is not defined") != std::string::npos);
    BOOST_TEST(all.find("record 3 (line 4): gre: GRE policy 'sometimes'") != std::string::npos);
    BOOST_TEST(all.find("record 4 (line 5): ipv4_home_address: 10.0.0.1 is realm 1's default router") !=
               std::string::npos);
    BOOST_TEST(all.find("record 5 (line 6): id: 'a@x' is also record 1 (line 2)") != std::string::npos);
    BOOST_TEST(all.find("line 8: has 2 fields, the header 4") != std::string::npos);
    BOOST_TEST(r.records == 0u);
    BOOST_TEST(store.size() == 1u, "nothing written");
    r = import_text(store, cfg, "id,realm,ipv4_home_address\ne@x,1,10.0.200.1\n");
    BOOST_TEST(r.errors.size() == 1u);
    BOOST_TEST(r.errors.at(0).find("record 1 (line 2): ipv4_home_address: 10.0.200.1 belongs to a mobile_nodes") == 0u);
    // A static address another stored MN holds is refused when it is written.
    r = import_text(store, cfg, "id,realm,ipv4_home_address\ng@x,1,10.0.9.9\nh@x,1,10.0.9.9\n");
    BOOST_TEST(r.errors.size() == 1u);
    BOOST_TEST(r.errors.at(0).find("record 2 (line 3): ipv4_home_address: 10.0.9.9 is already mobile node 'g@x''s") ==
               0u);
    BOOST_TEST(store.size() == 1u);
    BOOST_CHECK_THROW(parse_subscriber({{"id", "mn1@op.example"}, {"realm", "1"}}, cfg), SubscriberError);
    BOOST_CHECK_THROW(parse_subscriber({{"id", "z@x"}}, cfg), SubscriberError);   // no realm
    BOOST_CHECK_THROW(parse_subscriber({{"id", "z@x"}, {"realm", "1"}, {"colour", "red"}}, cfg), SubscriberError);
}

BOOST_AUTO_TEST_CASE(json_lines_arrays_quoted_csv_and_replace) {
    StoreDir d;
    const auto cfg = parse_lma_config(config::load_string(d.yaml(), "lma.yaml"));
    SubscriberStore store(d.file());
    auto r = import_text(store, cfg, "{\"id\": \"j1@x\", \"realm\": 1, \"ipv6\": false}\n\n"
                                     "{\"id\": \"j2@x\", \"realm\": 2, \"gre\": \"keys-required\"}\n",
                         SubscriberFormat::Json);
    BOOST_TEST(r.errors.empty());
    BOOST_TEST(!store.get("j1@x")->ipv6);
    BOOST_TEST((store.get("j2@x")->policy.gre == GrePolicy::KeysRequired));
    r = import_text(store, cfg, "[{\"id\": \"a1@x\", \"realm\": 1}, {\"id\": \"a2@x\", \"realm\": true}]",
                    SubscriberFormat::Json);
    BOOST_TEST(r.errors.size() == 1u);
    BOOST_TEST(r.errors.at(0).find("realm: 'true' is not a realm id") != std::string::npos);
    r = import_text(store, cfg, "id,realm\n\"q,1@x\",1\n", SubscriberFormat::Csv, true);
    BOOST_TEST(r.errors.empty());
    BOOST_TEST(store.size() == 1u, "replaced");
    BOOST_TEST(store.get("q,1@x").has_value());
    const auto page = store.page("", 10);
    BOOST_TEST(page.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- The binding journal (issue 17: a restart loses no binding) -------------------------

namespace {

struct JournalDir {
    std::filesystem::path dir;
    JournalDir() {
        char tmpl[] = "/tmp/xpmip-unit-journal-XXXXXX";
        dir = ::mkdtemp(tmpl);
    }
    ~JournalDir() { std::filesystem::remove_all(dir); }
    std::filesystem::path journal(std::uint64_t g) const { return dir / ("journal-" + std::to_string(g)); }
};

// An LMA with a journal in `d`, as the daemon runs it: restored from it first, then journaling.
struct JournaledLma : Lma {
    std::unique_ptr<BindingJournal> journal;
    RestoreReport report;
    JournalRecovery recovery;
    JournaledLma(const JournalDir& d, const std::string& yaml = lma_yaml(),
                 std::map<std::uint32_t, dataplane::SessionConfig> held = {})
        : Lma(yaml) {
        sink.sessions = std::move(held);
        journal = std::make_unique<BindingJournal>(d.dir);
        recovery = journal->take_recovery();
        lma.attach_journal(journal.get());
        report = lma.restore(std::move(recovery.entries), now);
        journal->flush();
    }
    ProxyBindingAcknowledgement send(const PbuSpec& p) {
        pass(10ms);   // (a newer timestamp each)
        auto a = Lma::send(p);
        journal->flush();
        return a;
    }
};

BindingCacheEntry every_field() {
    BindingCacheEntry e;
    e.session_id = 7;
    e.realm = 2;
    e.proxy_coa = kMagA4;
    e.lma_address = kLma4;
    e.transport = Transport::Ipv4Udp;
    e.mag_port = 40000;
    e.hnp = Ipv6Prefix::parse("2001:db8:a:1::/64");
    e.ipv4_hoa = Ipv4Address::parse("10.0.0.9");
    e.ipv4_hoa_length = 24;
    e.att = 4;
    e.handoff_indicator = 5;
    e.mn_ll_id = std::string("\x02\x00\x5e\x10\x00\x01", 6);
    e.link_local = Ipv6Address::parse("fe80::1");
    e.lifetime = 400s;
    e.last_sequence = 9;
    e.last_timestamp = 12345;
    e.gre = true;
    e.key_downlink = 0x100;
    e.key_uplink = 7;
    e.tlv_header = true;
    e.force_udp = true;
    e.in_dataplane = true;
    e.serves_hnp = true;
    e.serves_hoa = true;
    e.gre_keys = true;
    e.encap = dataplane::Encapsulation::UdpTlvGre;
    e.policy = 3;
    auto& mp = e.multipath.get_or_emplace();
    mp.mag_id = "mag-a.example";
    for (std::uint8_t bid : {std::uint8_t{1}, std::uint8_t{2}}) {
        MultipathBinding b;
        b.bid = bid;
        b.label = bid;
        b.if_att = 4;
        b.proxy_coa = bid == 1 ? kMagA4 : kMagA4b;
        b.lma_address = kLma4;
        b.ifindex = 2u + bid;
        b.last_sequence = bid;
        b.last_timestamp = 99;
        b.gre = true;
        b.key_downlink = 0x200u + bid;
        b.key_uplink = 1000u + bid;
        b.tlv_header = true;
        b.encap = dataplane::Encapsulation::UdpTlvGre;
        b.path_up = bid == 1;
        b.weight = 3;
        mp.bindings[bid] = b;
    }
    return e;
}

} // namespace

BOOST_AUTO_TEST_SUITE(lma_journal)

BOOST_AUTO_TEST_CASE(an_entry_round_trips_every_field) {
    const auto e = every_field();
    const std::string bytes = encode_entry("mn1@op.example", "mag-a", e);
    const auto rec = decode_entry(bytes);
    BOOST_TEST(rec.mn_id == "mn1@op.example");
    BOOST_TEST(rec.peer == "mag-a");
    BOOST_TEST(encode_entry(rec.mn_id, rec.peer, rec.entry) == bytes);
    BOOST_TEST(*rec.entry.multipath->bindings.at(2).key_uplink == 1002u);
    BOOST_TEST(rec.entry.mn_ll_id.size() == 6u);
    // A refresh (sequence, timestamps) does not change the encoding without freshness.
    auto refreshed = e;
    refreshed.last_sequence = 10;
    refreshed.last_timestamp = 12346;
    refreshed.multipath->bindings.at(1).last_sequence = 5;
    BOOST_TEST(encode_entry("m", "p", refreshed, false) == encode_entry("m", "p", e, false));
    BOOST_TEST(encode_entry("m", "p", refreshed) != encode_entry("m", "p", e));
    auto moved = e;
    moved.key_downlink = 0x101;
    BOOST_TEST(encode_entry("m", "p", moved, false) != encode_entry("m", "p", e, false));
}

BOOST_AUTO_TEST_CASE(a_bad_payload_is_an_error_naming_the_field) {
    const std::string bytes = encode_entry("mn1@op.example", "mag-a", every_field());
    try {
        decode_entry(std::string_view(bytes).substr(0, 30));
        BOOST_FAIL("a cut payload decoded");
    } catch (const JournalError& ex) {
        BOOST_TEST(std::string(ex.what()).find("cut short") != std::string::npos, ex.what());
    }
    std::string bad = bytes;
    bad[2 + 14 + 2 + 5 + 4 + 4] = 9;   // proxy_coa's family
    try {
        decode_entry(bad);
        BOOST_FAIL("family 9 decoded");
    } catch (const JournalError& ex) {
        BOOST_TEST(std::string(ex.what()).find("proxy_coa: address family 9") != std::string::npos, ex.what());
    }
    BOOST_CHECK_THROW(decode_entry(bytes + "x"), JournalError);
}

BOOST_AUTO_TEST_CASE(a_restarted_lma_has_every_binding_with_its_keys_and_addresses) {
    JournalDir d;
    std::map<std::uint32_t, dataplane::SessionConfig> held;
    std::map<std::string, std::string> before;   // MN -> its entry's encoding
    {
        JournaledLma a(d);
        PbuSpec p;
        p.ipv4 = true;
        p.gre = PbuSpec::Gre::Key;
        REQUIRE_STATUS(a.send(p), Accepted);
        p.mn = "mn2@op.example";
        p.key = 0x2000;
        REQUIRE_STATUS(a.send(p), Accepted);
        PbuSpec s;
        s.mn = "static@op.example";
        s.ipv4 = true;
        REQUIRE_STATUS(a.send(s), Accepted);
        PbuSpec gone;
        gone.mn = "v6only@op.example";
        REQUIRE_STATUS(a.send(gone), Accepted);
        gone.lifetime_s = 0;
        gone.seq = 2;
        REQUIRE_STATUS(a.send(gone), Accepted);   // de-registered: held MinDelayBeforeBCEDelete
        for (const auto& [id, e] : a.lma.cache().entries()) {
            before[id] = encode_entry(id, a.lma.cache().peer_name(e), e, false);
        }
        held = a.sink.sessions;   // kill -9: the data plane stays as it was
    }
    // One session lost (as if the crash came between the journal and the map write), one that
    // no binding owns.
    const auto lost = held.begin()->first;
    held.erase(lost);
    dataplane::SessionConfig orphan = held.begin()->second;
    orphan.id = 900;
    orphan.hnp = Ipv6Prefix::parse("2001:db8:a:900::/64");
    orphan.hoa.reset();
    orphan.paths[0].key_downlink = orphan.paths[0].key_uplink = 0;
    orphan.gre_keys = false;
    held[900] = orphan;

    JournaledLma b(d, lma_yaml(), held);
    BOOST_TEST(b.recovery.losses.empty());
    BOOST_TEST(b.report.bindings == 4u);
    BOOST_TEST(b.report.sessions_kept == 2u);
    BOOST_TEST(b.report.sessions_written == 1u);
    BOOST_TEST(b.report.orphans_removed == 1u);
    BOOST_TEST(!b.sink.sessions.contains(900u));
    b.check_dataplane();
    for (const auto& [id, e] : b.lma.cache().entries()) {
        BOOST_TEST(encode_entry(id, b.lma.cache().peer_name(e), e, false) == before.at(id), id << " differs");
    }
    BOOST_TEST(b.entry("v6only@op.example")->deregistered);

    // The MAG's next refresh: accepted with the same prefix, address and key.
    const auto* e1 = b.entry("mn1@op.example");
    PbuSpec p;
    p.ipv4 = true;
    p.gre = PbuSpec::Gre::Key;
    p.seq = 2;
    p.hi = 5;
    b.pass(1s);
    auto pba = b.send(p);
    REQUIRE_STATUS(pba, Accepted);
    BOOST_TEST((pba.options.find<HomeNetworkPrefixOption>()->prefix == e1->hnp->address));
    BOOST_TEST((pba.options.find<Ipv4HomeAddressReplyOption>()->address == *e1->ipv4_hoa));
    BOOST_TEST(*pba.options.find<GreKeyOption>()->key == *e1->key_uplink);
    // What the restored bindings hold is not handed out again.
    PbuSpec n;
    n.mn = "mn3@op.example";   // not listed: add it
    JournaledLma c(d, lma_yaml("  - {id: mn3@op.example, realm: 1}\n"), b.sink.sessions);
    n.ipv4 = true;
    auto fresh = c.send(n);
    REQUIRE_STATUS(fresh, Accepted);
    for (const auto& [id, e] : c.lma.cache().entries()) {
        if (id != "mn3@op.example") {
            BOOST_TEST(e.session_id != c.entry("mn3@op.example")->session_id);
            BOOST_TEST((e.ipv4_hoa != c.entry("mn3@op.example")->ipv4_hoa));
            BOOST_TEST((e.hnp != c.entry("mn3@op.example")->hnp));
        }
    }
}

BOOST_AUTO_TEST_CASE(a_refresh_is_not_journaled_and_every_change_is) {
    JournalDir d;
    JournaledLma l(d);
    PbuSpec p;
    REQUIRE_STATUS(l.send(p), Accepted);
    const auto after_create = l.journal->records_since_snapshot();
    BOOST_TEST(after_create == 1u);
    p.seq = 2;
    l.pass(1s);
    REQUIRE_STATUS(l.send(p), Accepted);   // a plain refresh
    BOOST_TEST(l.journal->records_since_snapshot() == after_create);
    p.seq = 3;
    p.from = kMagB6;                       // a handoff
    p.hi = 2;
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.journal->records_since_snapshot() == after_create + 1);
    p.seq = 4;
    p.lifetime_s = 0;                      // de-registration
    REQUIRE_STATUS(l.send(p), Accepted);
    BOOST_TEST(l.journal->records_since_snapshot() == after_create + 2);
    l.pass(11s);                           // the hold ends: deleted
    l.tick();
    BOOST_TEST(l.journal->records_since_snapshot() == after_create + 3);
    l.journal->flush();
    JournaledLma again(d);
    BOOST_TEST(again.lma.cache().size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_torn_or_corrupt_tail_keeps_what_is_intact_and_says_what_was_lost) {
    JournalDir d;
    {
        JournaledLma a(d);
        for (const char* mn : {"mn1@op.example", "mn2@op.example", "static@op.example"}) {
            PbuSpec p;
            p.mn = mn;
            REQUIRE_STATUS(a.send(p), Accepted);
        }
    }
    const auto path = d.journal(1);
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size - 5);   // the last record cut short
    {
        JournaledLma b(d);
        BOOST_TEST(b.report.bindings == 2u);
        BOOST_REQUIRE_EQUAL(b.recovery.losses.size(), 1u);
        BOOST_TEST(b.recovery.losses[0].find("record 3") != std::string::npos, b.recovery.losses[0]);
        BOOST_TEST(b.recovery.losses[0].find("cut short") != std::string::npos, b.recovery.losses[0]);
        BOOST_TEST(b.journal->generation() == 2u, "appends go to a new file, after the torn one");
    }
    // A flipped octet in record 2's payload: records from there on are lost, never misread.
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(0, std::ios::end);
        const auto n = static_cast<std::streamoff>(f.tellg());
        BOOST_REQUIRE(n > 200);
        f.seekp(24 + (n - 24) / 2);   // inside record 2 of about three
        f.put('\xff');
    }
    JournaledLma c(d);
    BOOST_TEST(c.report.bindings <= 2u);
    BOOST_TEST(c.recovery.losses.size() >= 1u);
    BOOST_TEST(c.recovery.losses[0].find("CRC") != std::string::npos, c.recovery.losses[0]);
}

BOOST_AUTO_TEST_CASE(compaction_writes_a_snapshot_from_a_child_and_drops_older_journals) {
    JournalDir d;
    {
        JournaledLma a(d);
        a.journal->set_threshold(2);
        for (const char* mn : {"mn1@op.example", "mn2@op.example"}) {
            PbuSpec p;
            p.mn = mn;
            REQUIRE_STATUS(a.send(p), Accepted);
        }
        BOOST_REQUIRE(a.journal->wants_compaction());
        a.journal->compact(a.lma.cache());
        PbuSpec p;
        p.mn = "static@op.example";   // while the child writes: into the next generation
        REQUIRE_STATUS(a.send(p), Accepted);
        for (int i = 0; i < 2000 && a.journal->compacting(); ++i) {
            a.journal->poll();
            ::usleep(5000);
        }
        BOOST_TEST(a.journal->compactions() == 1u);
        BOOST_TEST(std::filesystem::exists(d.dir / "snapshot"));
        BOOST_TEST(!std::filesystem::exists(d.journal(1)));
        BOOST_TEST(std::filesystem::exists(d.journal(2)));
    }
    JournaledLma b(d);
    BOOST_TEST(b.recovery.losses.empty());
    BOOST_TEST(b.report.bindings == 3u);
    // A kill -9 mid-compaction: the journals it would have replaced still there, a half snapshot
    // under its temporary name. Replaying them again over the snapshot changes nothing.
    std::filesystem::copy_file(d.journal(2), d.journal(1));
    std::ofstream(d.dir / "snapshot.tmp.1234") << "half";
    JournaledLma c(d);
    BOOST_TEST(c.recovery.losses.empty());
    BOOST_TEST(c.report.bindings == 3u);
    BOOST_TEST(!std::filesystem::exists(d.dir / "snapshot.tmp.1234"), "a half snapshot is removed");
}

BOOST_AUTO_TEST_CASE(a_binding_no_longer_valid_is_dropped_and_named) {
    JournalDir d;
    {
        JournaledLma a(d);
        PbuSpec p;
        p.mn = "small1@op.example";
        REQUIRE_STATUS(a.send(p), Accepted);
        p.mn = "mn1@op.example";
        REQUIRE_STATUS(a.send(p), Accepted);
    }
    // mn1 gone from mobile_nodes (its domain is not configured either).
    std::string yaml = lma_yaml();
    const std::string line = "  - {id: mn1@op.example, realm: 1}\n";
    yaml.erase(yaml.find(line), line.size());
    JournaledLma b(d, yaml);
    BOOST_TEST(b.report.bindings == 1u);
    BOOST_TEST(b.report.dropped == 1u);
    BOOST_TEST(!b.entry("mn1@op.example"));
    BOOST_TEST(b.entry("small1@op.example"));
    JournaledLma c(d, yaml);   // and the journal forgot it
    BOOST_TEST(c.report.dropped == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
