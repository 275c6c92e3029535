// The MAG's PBA handling against LMAs that are not xpmip, in-process: a MobileAccessGateway with
// a recording sink (the data plane's own session validation included) and a clock the test
// moves. Each case is a deviation seen from another implementation's LMA.
#include "dataplane/types.hpp"
#include "mag/mag.hpp"
#include "mag/mag_config.hpp"

#include <boost/test/unit_test.hpp>

#include <map>

using namespace xpmip;
using namespace xpmip::mag;
using namespace xpmip::wire;
using namespace std::chrono_literals;

namespace {

// The data plane as the MAG sees it: sessions by id, refused as SessionTable refuses them.
struct RecordingSink : MagSink {
    std::map<std::uint32_t, dataplane::SessionConfig> sessions;
    unsigned registered_calls = 0;
    void upsert(const dataplane::SessionConfig& s) override {
        dataplane::validate(s);
        sessions[s.id] = s;
    }
    void remove(std::uint32_t id) override { sessions.erase(id); }
    std::uint32_t ifindex(const std::string& name) override { return name == "acc0" ? 2 : 3; }
    void registered(const BindingUpdateListEntry&) override { ++registered_calls; }
};

std::string mag_yaml(const std::string& lma, const std::string& extra_mag = "") {
    return "instance: unit-mag\n"
           "mag:\n"
           "  addresses: [2001:db8:ffff::10, 192.0.2.10]\n"
           "  lma: " + lma + "\n" + extra_mag +
           "interfaces:\n"
           "  - {name: wan0, kind: tunnel}\n"
           "  - {name: acc0, kind: access}\n"
           "mobile_nodes:\n"
           "  - {id: mn1@op.example, mac: '02:00:00:00:01:01', interface: acc0, attach: dynamic}\n"
           "  - {id: mn2@op.example, mac: '02:00:00:00:01:02', interface: acc0, attach: dynamic, ipv4: false}\n";
}

struct Mag {
    RecordingSink sink;
    MobileAccessGateway mag;
    Clock::time_point now = Clock::time_point{} + 1000s;

    explicit Mag(const std::string& yaml)
        : mag(parse_mag_config(config::load_string(yaml, "mag.yaml")), sink, [] { return std::uint64_t{1} << 32; }) {}

    OutgoingPbu attach(const std::string& mn) {
        auto out = mag.attach(mn, now);
        BOOST_REQUIRE_EQUAL(out.size(), 1u);
        return out[0];
    }
    // The PBA an LMA sends for `pbu`: accepted, with what `shape` adds.
    std::vector<OutgoingPbu> answer(const OutgoingPbu& pbu, const std::function<void(ProxyBindingAcknowledgement&)>& shape) {
        ProxyBindingAcknowledgement pba;
        pba.sequence = pbu.pbu.sequence;
        pba.lifetime = pbu.pbu.lifetime;
        pba.options.add(*pbu.pbu.options.find<MobileNodeIdentifierOption>());
        shape(pba);
        return mag.on_pba(IncomingPba{pbu.transport, pbu.dst, pba}, now);
    }
    const BindingUpdateListEntry& entry(const std::string& mn) { return mag.entries().at(mn); }
};

const Ipv6Address kHnp = Ipv6Address::parse("2001:db8:a:1::");

void with_addresses(ProxyBindingAcknowledgement& pba) {
    pba.options.add(HomeNetworkPrefixOption{64, kHnp});
    pba.options.add(Ipv4HomeAddressReplyOption{ipv4_hoa_status::kSuccess, 16, Ipv4Address::parse("10.0.0.2")});
    pba.options.add(Ipv4DefaultRouterAddressOption{Ipv4Address::parse("10.0.0.1")});
}

} // namespace

BOOST_AUTO_TEST_SUITE(mag_registration)

// RFC 5845 §7.2: "the LMA MUST NOT set the T flag" when the PBU did not. Over IPv6 an LMA that
// does so made the MAG write a udp-tlv-gre session (refused: no UDP over IPv6) and de-register.
BOOST_AUTO_TEST_CASE(stray_t_flag_over_ipv6_is_ignored_and_the_mn_stays_registered) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST(!pbu.pbu.has(bu_flag::kTlvHeader));
    auto out = m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x1234});
        pba.flags |= ba_flag::kTlvHeader;
    });
    BOOST_TEST(out.empty(), "no de-registration");
    BOOST_TEST((m.entry("mn1@op.example").state == BindingUpdateListEntry::State::Registered));
    BOOST_REQUIRE_EQUAL(m.sink.sessions.size(), 1u);
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Gre));
    BOOST_TEST(m.sink.registered_calls == 1u);
}

// Over IPv4 the same stray T switched the session to the TLV format the MAG never asked for.
BOOST_AUTO_TEST_CASE(stray_t_flag_over_ipv4_keeps_plain_gre) {
    Mag m(mag_yaml("192.0.2.1"));
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST((pbu.transport == Transport::Ipv4Udp));
    BOOST_TEST(!pbu.pbu.has(bu_flag::kTlvHeader));
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x1234});
        pba.flags |= ba_flag::kTlvHeader;
    });
    BOOST_REQUIRE_EQUAL(m.sink.sessions.size(), 1u);
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Gre));
    BOOST_TEST(!m.entry("mn1@op.example").tlv_header);
}

// A T the MAG asked for is still taken (RFC 5845 §7.3).
BOOST_AUTO_TEST_CASE(t_flag_asked_for_gives_udp_tlv_gre) {
    Mag m(mag_yaml("192.0.2.1", "  tlv_header: true\n"));
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST(pbu.pbu.has(bu_flag::kTlvHeader));
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x1234});
        pba.flags |= ba_flag::kTlvHeader;
    });
    BOOST_REQUIRE_EQUAL(m.sink.sessions.size(), 1u);
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::UdpTlvGre));
}

// RFC 5213 §6.9.1.2: an LMA that echoes the all-zero prefix assigned none. The MAG installed a
// ::/0 session whose route captured its own traffic to the LMA.
BOOST_AUTO_TEST_CASE(hnp_of_all_zeroes_is_no_prefix_and_the_ipv4_service_stays) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        pba.options.add(HomeNetworkPrefixOption{0, Ipv6Address{}});
        pba.options.add(Ipv4HomeAddressReplyOption{ipv4_hoa_status::kSuccess, 16, Ipv4Address::parse("10.0.0.2")});
        pba.options.add(Ipv4DefaultRouterAddressOption{Ipv4Address::parse("10.0.0.1")});
        pba.options.add(GreKeyOption{0x1234});
    });
    BOOST_TEST(!m.entry("mn1@op.example").hnp.has_value());
    BOOST_REQUIRE_EQUAL(m.sink.sessions.size(), 1u);
    const auto& s = m.sink.sessions.begin()->second;
    BOOST_TEST(!s.hnp.has_value());
    BOOST_TEST(s.hoa.has_value());
}

BOOST_AUTO_TEST_CASE(zero_length_hnp_of_an_ipv6_only_mn_installs_nothing) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn2@op.example");
    m.answer(pbu, [](auto& pba) {
        pba.options.add(HomeNetworkPrefixOption{0, kHnp});   // a prefix of length 0 is ::/0 too
        pba.options.add(GreKeyOption{0x1234});
    });
    BOOST_TEST(m.sink.sessions.empty(), "no session route for ::/0");
    BOOST_TEST(m.sink.registered_calls == 0u);
}

// RFC 5845 §4.2: "If the MAG receives a PBA with status 163 ... it SHOULD resend the PBU with
// the GRE Key option". gre: on-request offers GRE only then.
BOOST_AUTO_TEST_CASE(gre_on_request_sends_no_option_until_163_then_one_with_a_key) {
    Mag m(mag_yaml("2001:db8:ffff::1", "  gre: on-request\n"));
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST(pbu.pbu.options.find<GreKeyOption>() == nullptr);
    auto out = m.answer(pbu, [](auto& pba) {
        pba.options = OptionList{};
        pba.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1@op.example"});
        pba.status = static_cast<std::uint8_t>(Status::GreKeyOptionRequired);
        pba.lifetime = 0;
    });
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    const auto* gre = out[0].pbu.options.find<GreKeyOption>();
    BOOST_REQUIRE(gre != nullptr);
    BOOST_REQUIRE(gre->key.has_value());
    BOOST_TEST(*gre->key != 0u);
    BOOST_TEST(m.mag.gre_alarms() == 0u);
    m.answer(out[0], [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x4321});
    });
    BOOST_REQUIRE_EQUAL(m.sink.sessions.size(), 1u);
    BOOST_TEST(m.sink.sessions.begin()->second.gre_keys);
}

BOOST_AUTO_TEST_CASE(gre_off_stops_at_163_with_an_alarm) {
    Mag m(mag_yaml("2001:db8:ffff::1", "  gre: off\n"));
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST(pbu.pbu.options.find<GreKeyOption>() == nullptr);
    auto out = m.answer(pbu, [](auto& pba) { pba.status = static_cast<std::uint8_t>(Status::GreKeyOptionRequired); });
    BOOST_TEST(out.empty());
    BOOST_TEST(m.mag.gre_alarms() == 1u);
    BOOST_TEST((m.entry("mn1@op.example").state == BindingUpdateListEntry::State::Failed));
}

BOOST_AUTO_TEST_SUITE_END()

// The data plane's own guard: no session route over the gateway's tunnel endpoints.
BOOST_AUTO_TEST_SUITE(dataplane_session_validation)

dataplane::SessionConfig v6_session(Ipv6Prefix hnp) {
    dataplane::SessionConfig s;
    s.id = 7;
    s.encap = dataplane::Encapsulation::Gre;
    s.hnp = hnp;
    dataplane::PathConfig p;
    p.local = Ipv6Address::parse("2001:db8:ffff::10");
    p.remote = Ipv6Address::parse("2001:db8:ffff::1");
    s.paths.push_back(p);
    return s;
}

void require_refused(const dataplane::SessionConfig& s, const std::string& needle) {
    try {
        dataplane::validate(s);
        BOOST_ERROR("accepted: " << needle);
    } catch (const dataplane::DataplaneError& e) {
        BOOST_TEST(std::string(e.what()).find(needle) != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(a_zero_length_hnp_is_refused) {
    require_refused(v6_session(Ipv6Prefix{Ipv6Address{}, 0}), "hnp prefix length 0 is not 1..128");
}

BOOST_AUTO_TEST_CASE(an_hnp_over_a_tunnel_endpoint_is_refused) {
    require_refused(v6_session(Ipv6Prefix{Ipv6Address::parse("2001:db8:ffff::"), 48}),
                    "covers paths[0].local 2001:db8:ffff::10, a tunnel endpoint");
}

BOOST_AUTO_TEST_CASE(an_hoa_over_a_tunnel_endpoint_is_refused) {
    dataplane::SessionConfig s;
    s.id = 8;
    s.encap = dataplane::Encapsulation::IpInIp;
    s.hoa = Ipv4Prefix{Ipv4Address::parse("192.0.2.0"), 24};
    dataplane::PathConfig p;
    p.local = Ipv4Address::parse("192.0.2.10");
    p.remote = Ipv4Address::parse("198.51.100.1");
    s.paths.push_back(p);
    require_refused(s, "hoa 192.0.2.0/24 covers paths[0].local 192.0.2.10");
}

BOOST_AUTO_TEST_CASE(an_ordinary_hnp_is_accepted) {
    BOOST_CHECK_NO_THROW(dataplane::validate(v6_session(Ipv6Prefix{Ipv6Address::parse("2001:db8:a:1::"), 64})));
}

BOOST_AUTO_TEST_SUITE_END()
