// The MAG's PBA handling against LMAs that are not xpmip, in-process: a MobileAccessGateway with
// a recording sink (the data plane's own session validation included) and a clock the test
// moves. Each case is a deviation seen from another implementation's LMA.
#include "dataplane/types.hpp"
#include "mag/bul_journal.hpp"
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

// ---- The Binding Update List (RFC 5213 §6.9, RFC 6275 §11.8) -----------------------------------

// RFC 6275 §11.8: retransmissions from INITIAL_BINDACK_TIMEOUT (1 s) doubling to 32 s, each with a
// new sequence number.
BOOST_AUTO_TEST_CASE(retransmission_doubles_from_1s_to_32s_with_new_sequence_numbers) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto first = m.attach("mn1@op.example");
    std::vector<std::chrono::seconds> gaps;
    std::uint16_t seq = first.pbu.sequence;
    auto last = m.now;
    for (int i = 0; i < 8; ++i) {
        for (int s = 0; s < 40; ++s) {   // step 1 s at a time until a PBU goes out
            m.now += 1s;
            auto out = m.mag.on_timer(m.now);
            if (!out.empty()) {
                BOOST_TEST(out[0].pbu.sequence != seq);
                seq = out[0].pbu.sequence;
                gaps.push_back(std::chrono::duration_cast<std::chrono::seconds>(m.now - last));
                last = m.now;
                break;
            }
        }
    }
    const std::vector<std::chrono::seconds> want{1s, 2s, 4s, 8s, 16s, 32s, 32s, 32s};
    BOOST_TEST(gaps == want, "gaps between PBUs");
}

BOOST_AUTO_TEST_CASE(at_most_3_pbus_per_second_per_mn) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    unsigned sent = 0;
    for (int i = 0; i < 5; ++i) {   // attach / detach as fast as it comes
        sent += static_cast<unsigned>(m.mag.attach("mn1@op.example", m.now).size());
        sent += static_cast<unsigned>(m.mag.detach("mn1@op.example", m.now).size());
    }
    BOOST_TEST(sent == 3u, "RFC 6275 §11.8 MAX_UPDATE_RATE within one second");
    m.now += 1s;
    BOOST_TEST(!m.mag.attach("mn1@op.example", m.now).empty(), "and again a second later");
}

BOOST_AUTO_TEST_CASE(refresh_at_80_percent_of_the_granted_lifetime_with_hi_5_and_the_prefix) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x1234});
        pba.lifetime = 100 / kLifetimeUnitSeconds;
    });
    m.now += 79s;
    BOOST_TEST(m.mag.on_timer(m.now).empty());
    m.now += 1s;
    auto out = m.mag.on_timer(m.now);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(unsigned(out[0].pbu.options.find<HandoffIndicatorOption>()->value) == 5u);
    const auto* h = out[0].pbu.options.find<HomeNetworkPrefixOption>();
    BOOST_TEST((h->prefix == kHnp));
    BOOST_TEST(*out[0].pbu.options.find<GreKeyOption>()->key == *pbu.pbu.options.find<GreKeyOption>()->key,
               "the same downlink key");
}

BOOST_AUTO_TEST_CASE(a_binding_that_expires_unrefreshed_stops_forwarding_and_registers_again) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.lifetime = 20 / kLifetimeUnitSeconds;
    });
    BOOST_TEST(m.sink.sessions.size() == 1u);
    for (int i = 0; i < 20; ++i) {   // refreshes unanswered
        m.now += 1s;
        m.mag.on_timer(m.now);
    }
    BOOST_TEST(m.sink.sessions.empty(), "forwarding stops at expiry");
    BOOST_TEST((m.entry("mn1@op.example").state == BindingUpdateListEntry::State::Registering));
}

BOOST_AUTO_TEST_CASE(status_2_no_gre_for_the_session_and_never_the_option_again_for_it) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.status = static_cast<std::uint8_t>(Status::GreKeyOptionNotRequired);
        pba.lifetime = 100 / kLifetimeUnitSeconds;
    });
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::IpInIp));
    m.now += 80s;
    auto out = m.mag.on_timer(m.now);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(out[0].pbu.options.find<GreKeyOption>() == nullptr, "RFC 5845 §4.2: MUST NOT include it again");
    BOOST_TEST(m.attach("mn2@op.example").pbu.options.find<GreKeyOption>() != nullptr, "other sessions still ask");
}

BOOST_AUTO_TEST_CASE(status_3_is_gre_without_udp) {
    Mag m(mag_yaml("192.0.2.1", "  tlv_header: true\n"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.status = static_cast<std::uint8_t>(Status::GreTunnelingButTlvHeaderNotSupported);
        pba.options.add(GreKeyOption{0x77});
    });
    BOOST_TEST((m.sink.sessions.begin()->second.encap == dataplane::Encapsulation::Gre));
}

BOOST_AUTO_TEST_CASE(success_without_the_option_stops_asking_that_lma) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    m.answer(m.attach("mn1@op.example"), with_addresses);
    BOOST_TEST(!m.mag.lma_supports_gre());
    BOOST_TEST(m.attach("mn2@op.example").pbu.options.find<GreKeyOption>() == nullptr);
}

BOOST_AUTO_TEST_CASE(rejections_a_retransmission_can_cure_are_retried_the_others_stop) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    auto out = m.answer(pbu, [](auto& pba) { pba.status = static_cast<std::uint8_t>(Status::InsufficientResources); });
    BOOST_TEST(out.empty());
    BOOST_TEST((m.entry("mn1@op.example").state == BindingUpdateListEntry::State::Registering), "130: retried");
    m.now += 1s;
    BOOST_TEST(m.mag.on_timer(m.now).size() == 1u);
    auto p2 = m.attach("mn2@op.example");
    m.answer(p2, [](auto& pba) { pba.status = static_cast<std::uint8_t>(Status::NotLmaForThisMobileNode); });
    BOOST_TEST((m.entry("mn2@op.example").state == BindingUpdateListEntry::State::Failed), "153: stops");
}

// Issue 17: an LMA that lost its bindings (restarted without them) answers a refresh with 155.
// The MN is not given up: it registers again at once as a new attachment (HI 1, ::/0 and
// 0.0.0.0), takes what that gets, and a second refusal is left to the retransmission back-off.
BOOST_AUTO_TEST_CASE(an_lma_that_forgot_the_binding_gets_a_new_attachment_once_then_back_off) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.lifetime = 100 / kLifetimeUnitSeconds;
    });
    m.now += 80s;
    auto refresh = m.mag.on_timer(m.now);
    BOOST_REQUIRE_EQUAL(refresh.size(), 1u);
    auto out = m.answer(refresh[0], [](auto& pba) {
        pba.status = static_cast<std::uint8_t>(Status::NotAuthorizedForHomeNetworkPrefix);
    });
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(unsigned(out[0].pbu.options.find<HandoffIndicatorOption>()->value) == 1u, "a new attachment");
    BOOST_TEST(out[0].pbu.options.find<HomeNetworkPrefixOption>()->prefix.is_unspecified(), "::/0: any prefix");
    BOOST_TEST(out[0].pbu.options.find<Ipv4HomeAddressRequestOption>()->address.is_unspecified());
    BOOST_TEST((m.entry("mn1@op.example").state != BindingUpdateListEntry::State::Failed));
    // Refused again: no resend at once, not failed; the retransmission timer tries later.
    auto again = m.answer(out[0], [](auto& pba) {
        pba.status = static_cast<std::uint8_t>(Status::NotAuthorizedForHomeNetworkPrefix);
    });
    BOOST_TEST(again.empty());
    BOOST_TEST((m.entry("mn1@op.example").state != BindingUpdateListEntry::State::Failed));
    m.now += 2s;
    auto later = m.mag.on_timer(m.now);
    BOOST_REQUIRE_EQUAL(later.size(), 1u);
    // Accepted with another prefix: that is the MN's now.
    const auto other = Ipv6Address::parse("2001:db8:a:77::");
    m.answer(later[0], [&](auto& pba) {
        pba.options.add(HomeNetworkPrefixOption{64, other});
        pba.options.add(Ipv4HomeAddressReplyOption{ipv4_hoa_status::kSuccess, 16, Ipv4Address::parse("10.0.0.9")});
    });
    const auto& e = m.entry("mn1@op.example");
    BOOST_TEST((e.state == BindingUpdateListEntry::State::Registered));
    BOOST_TEST((e.hnp->address == other));
    BOOST_TEST(m.sink.sessions.size() == 1u);
    BOOST_TEST((*m.sink.sessions.begin()->second.hnp == *e.hnp), "the data plane has the new prefix");
}

BOOST_AUTO_TEST_CASE(status_135_takes_the_lmas_sequence_number_and_resends_at_once) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    auto pbu = m.attach("mn1@op.example");
    ProxyBindingAcknowledgement pba;
    pba.status = static_cast<std::uint8_t>(Status::SequenceNumberOutOfWindow);
    pba.sequence = 5000;   // the LMA's last accepted, not ours
    pba.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "mn1@op.example"});
    auto out = m.mag.on_pba(IncomingPba{pbu.transport, pbu.dst, pba}, m.now);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(out[0].pbu.sequence == 5001u);
}

BOOST_AUTO_TEST_CASE(a_deregistration_is_retransmitted_then_dropped_after_its_attempts) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    m.answer(m.attach("mn1@op.example"), with_addresses);
    m.now += 2s;
    auto d = m.mag.detach("mn1@op.example", m.now);
    BOOST_REQUIRE_EQUAL(d.size(), 1u);
    BOOST_TEST(d[0].pbu.lifetime == 0u);
    BOOST_TEST(d[0].pbu.options.find<GreKeyOption>() == nullptr, "RFC 5845 §4.2: none in a de-registration");
    BOOST_TEST(m.sink.sessions.empty());
    unsigned resent = 0;
    for (int i = 0; i < 60; ++i) {
        m.now += 1s;
        resent += static_cast<unsigned>(m.mag.on_timer(m.now).size());
    }
    BOOST_TEST(resent == 2u, "3 attempts in all");
    BOOST_TEST(m.mag.entries().count("mn1@op.example") == 0u);
}

// RFC 6275 §11.7.1: an MN's PBUs carry its own increasing sequence numbers, whatever the MAG
// sends for other MNs in between (a shared counter moved them past the LMA's window at scale).
BOOST_AUTO_TEST_CASE(an_mns_sequence_numbers_are_its_own) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    const auto first = m.attach("mn1@op.example");
    m.answer(first, with_addresses);
    for (int i = 0; i < 5; ++i) {   // mn2 registers, detaches and comes back: PBUs in between
        m.now += 2s;
        m.answer(m.attach("mn2@op.example"), with_addresses);
        m.now += 2s;
        m.mag.detach("mn2@op.example", m.now);
    }
    m.now += 400s;
    std::vector<OutgoingPbu> refresh;
    for (int i = 0; i < 4000 && refresh.empty(); ++i) {
        m.now += 1s;
        for (auto& p : m.mag.on_timer(m.now)) {
            if (p.pbu.options.find<MobileNodeIdentifierOption>()->identifier == "mn1@op.example") {
                refresh.push_back(p);
            }
        }
    }
    BOOST_REQUIRE(!refresh.empty());
    BOOST_TEST(refresh[0].pbu.sequence == static_cast<std::uint16_t>(first.pbu.sequence + 1));
}

// Issue 17: at SIGTERM, de-registrations are resent every initial_retransmit (no doubling, no
// attempt limit) until the LMA answers; the daemon bounds the wait by shutdown_timeout.
BOOST_AUTO_TEST_CASE(shutdown_resends_deregistrations_until_answered) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    m.answer(m.attach("mn1@op.example"), with_addresses);
    m.now += 2s;
    auto d = m.mag.shutdown(m.now);
    BOOST_REQUIRE_EQUAL(d.size(), 1u);
    BOOST_TEST(d[0].pbu.lifetime == 0u);
    BOOST_TEST(m.mag.deregistrations_outstanding() == 1u);
    BOOST_TEST(m.mag.attach("mn1@op.example", m.now).empty(), "no attach while shutting down");
    std::vector<OutgoingPbu> last;
    unsigned resent = 0;
    for (int i = 0; i < 8; ++i) {
        m.now += 1s;
        auto out = m.mag.on_timer(m.now);
        resent += static_cast<unsigned>(out.size());
        if (!out.empty()) {
            last = out;
        }
    }
    BOOST_TEST(resent == 8u, "one every initial_retransmit (1 s), past deregistration_attempts (3)");
    BOOST_REQUIRE(!last.empty());
    BOOST_TEST(m.mag.deregistrations_outstanding() == 1u);
    m.answer(last[0], [](auto&) {});
    BOOST_TEST(m.mag.deregistrations_outstanding() == 0u);
    BOOST_TEST(m.mag.entries().empty());
}

// ---- RFC 8278 at the MAG ------------------------------------------------------------------------

std::string multipath_yaml() {
    return "instance: unit-mag\n"
           "mag:\n"
           "  lma: 192.0.2.1\n"
           "  identifier: mag-x.example\n"
           "interfaces:\n"
           "  - {name: wan0, kind: tunnel}\n"
           "  - {name: wan1, kind: tunnel}\n"
           "  - {name: acc0, kind: access}\n"
           "labels:\n  - {name: red, id: 1}\n  - {name: blue, id: 2}\n"
           "wan:\n"
           "  - {interface: wan0, address: 192.0.2.10, label: red}\n"
           "  - {interface: wan1, address: 203.0.113.10, lma: 203.0.113.1, label: blue}\n"
           "mobile_nodes:\n"
           "  - {id: mn1@op.example, mac: '02:00:00:00:01:01', interface: acc0, attach: dynamic}\n";
}

BOOST_AUTO_TEST_CASE(rfc8278_one_path_first_then_the_other_once_the_lma_echoes_63) {
    Mag m(multipath_yaml());
    auto first = m.attach("mn1@op.example");
    BOOST_TEST(to_string(first.dst) == "192.0.2.1");
    const auto* mmb = first.pbu.options.find<MagMultipathBindingOption>();
    BOOST_REQUIRE(mmb);
    BOOST_TEST(first.pbu.options.find<MagIdentifierOption>()->identifier == "mag-x.example");
    auto out = m.answer(first, [&](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x11});
        pba.options.add(*mmb);
    });
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(to_string(out[0].dst) == "203.0.113.1", "the second path to its own LMA address");
    BOOST_TEST(unsigned(out[0].pbu.options.find<MagMultipathBindingOption>()->binding_id) == 2u);
    m.answer(out[0], [&](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x22});
        pba.options.add(*out[0].pbu.options.find<MagMultipathBindingOption>());
    });
    BOOST_TEST(m.sink.sessions.begin()->second.paths.size() == 2u);
}

BOOST_AUTO_TEST_CASE(rfc8278_180_registers_one_path_without_the_options) {
    Mag m(multipath_yaml());
    auto first = m.attach("mn1@op.example");
    auto out = m.answer(first, [](auto& pba) {
        pba.status = static_cast<std::uint8_t>(Status::CannotSupportMultipathBinding);
        pba.lifetime = 0;
    });
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(out[0].pbu.options.find<MagMultipathBindingOption>() == nullptr);
    BOOST_TEST(m.mag.multipath_disabled("mn1@op.example"));
}

BOOST_AUTO_TEST_CASE(rfc8278_a_legacy_lma_without_63_disables_multipath_for_the_mn) {
    Mag m(multipath_yaml());
    auto out = m.answer(m.attach("mn1@op.example"), [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x11});
    });
    BOOST_TEST(out.empty(), "no second path");
    BOOST_TEST(m.mag.multipath_disabled("mn1@op.example"));
    BOOST_TEST(m.sink.sessions.size() == 1u);
}

// One LMA on several WAN links (RFC 8278 §3): what it showed about GRE holds for every path, so
// the MN's paths negotiate alike and share one session's encapsulation.
BOOST_AUTO_TEST_CASE(rfc8278_paths_to_one_lmas_addresses_negotiate_gre_alike) {
    Mag m(multipath_yaml());
    auto first = m.attach("mn1@op.example");
    const auto mmb = *first.pbu.options.find<MagMultipathBindingOption>();
    auto out = m.answer(first, [&](auto& pba) {
        with_addresses(pba);   // accepted without the GRE Key option
        pba.options.add(mmb);
    });
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(out[0].pbu.options.find<GreKeyOption>() == nullptr, "the second path does not ask either");
    m.answer(out[0], [&](auto& pba) {
        with_addresses(pba);
        pba.options.add(*out[0].pbu.options.find<MagMultipathBindingOption>());
    });
    const auto& s = m.sink.sessions.begin()->second;
    BOOST_TEST(s.paths.size() == 2u);
    BOOST_TEST((s.encap == dataplane::Encapsulation::IpInIp));
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

// ---- RFC 5847 Heartbeat (issue 17) ---------------------------------------------------------

#include "agent/heartbeat.hpp"

namespace {

using xpmip::agent::HeartbeatEvent;
using xpmip::agent::HeartbeatMonitor;

const IpAddress kHbLocal = Ipv4Address::parse("192.0.2.10");
const IpAddress kHbLma = Ipv4Address::parse("192.0.2.1");

Heartbeat response_to(const HeartbeatEvent& sent, std::optional<std::uint32_t> counter) {
    Heartbeat hb;
    hb.flags = hb_flag::kResponse;
    hb.sequence = sent.message.sequence;
    if (counter) {
        hb.options.add(RestartCounterOption{*counter});
    }
    return hb;
}

std::size_t count_kind(const std::vector<HeartbeatEvent>& ev, HeartbeatEvent::Kind k) {
    return static_cast<std::size_t>(std::count_if(ev.begin(), ev.end(), [k](const auto& e) { return e.kind == k; }));
}

} // namespace

// RFC 5846 §9.1 at the MAG, rule by rule: each BRI of its LMA answered with the status the RFC
// gives, the MNs it names torn down (session gone, no de-registration), the others untouched.
BOOST_AUTO_TEST_SUITE(mag_revocation)

struct Revoked : Mag {
    const IpAddress lma = Ipv6Address::parse("2001:db8:ffff::1");
    Revoked() : Mag(mag_yaml("2001:db8:ffff::1")) {
        for (const char* mn : {"mn1@op.example", "mn2@op.example"}) {
            answer(attach(mn), [](auto& pba) {
                with_addresses(pba);
                pba.options.add(GreKeyOption{0x1234});
            });
        }
        BOOST_REQUIRE_EQUAL(sink.sessions.size(), 2u);
    }
    std::uint8_t ask(BindingRevocationIndication bri, const IpAddress* from = nullptr) {
        bri.sequence = 77;
        auto bra = mag.on_bri(from ? *from : lma, bri, now);
        BOOST_REQUIRE(bra.has_value());
        BOOST_TEST(bra->sequence == 77u, "the BRI's sequence number");
        BOOST_TEST(bra->flags == bri.flags, "P, V, G as they were");
        return bra->status;
    }
    static BindingRevocationIndication per_mn(const std::string& mn, std::uint8_t trigger = 1) {
        BindingRevocationIndication bri;
        bri.trigger = trigger;
        bri.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, mn});
        return bri;
    }
};

BOOST_AUTO_TEST_CASE(a_per_mn_bri_tears_the_mn_down_without_a_deregistration) {
    Revoked r;
    auto bri = Revoked::per_mn("mn1@op.example");
    bri.options.add(HomeNetworkPrefixOption{64, kHnp});
    BOOST_TEST(unsigned(r.ask(bri)) == 0u);
    BOOST_TEST(r.mag.entries().count("mn1@op.example") == 0u);
    BOOST_TEST(r.mag.entries().count("mn2@op.example") == 1u);
    BOOST_TEST(r.sink.sessions.size() == 1u, "its session gone, the other's kept");
    BOOST_TEST(r.mag.on_timer(r.now + 1s).empty(), "no de-registration PBU: the LMA revoked it");
}

BOOST_AUTO_TEST_CASE(each_rule_of_9_1_has_its_status_and_changes_nothing) {
    Revoked r;
    const IpAddress stranger = Ipv6Address::parse("2001:db8:ffff::99");
    BOOST_TEST(!r.mag.on_bri(stranger, Revoked::per_mn("mn1@op.example"), r.now).has_value(), "not our LMA: no answer");
    BOOST_TEST(unsigned(r.ask(Revoked::per_mn("nobody@op.example"))) == 128u, "Binding Does NOT Exist");
    auto other_prefix = Revoked::per_mn("mn1@op.example");
    other_prefix.options.add(HomeNetworkPrefixOption{64, Ipv6Address::parse("2001:db8:bad::")});
    BOOST_TEST(unsigned(r.ask(other_prefix)) == 128u, "an HNP not the MN's");
    BOOST_TEST(unsigned(r.ask(BindingRevocationIndication{})) == 131u, "no MN-ID: identity required");
    BOOST_TEST(unsigned(r.ask(Revoked::per_mn("mn1@op.example", 100))) == 133u, "unknown trigger");
    BOOST_TEST(unsigned(r.ask(Revoked::per_mn("mn1@op.example", 4))) == 132u, "inter-MAG handover: still attached");
    auto g_per_mn = Revoked::per_mn("mn1@op.example");
    g_per_mn.flags |= br_flag::kGlobal;
    BOOST_TEST(unsigned(r.ask(g_per_mn)) == 134u, "G with a per-MN trigger");
    auto global_without_g = BindingRevocationIndication{};
    global_without_g.trigger = 128;
    BOOST_TEST(unsigned(r.ask(global_without_g)) == 134u, "a global trigger without G");
    auto v = Revoked::per_mn("mn1@op.example");
    v.flags |= br_flag::kIpv4HoaOnly;
    BOOST_TEST(unsigned(r.ask(v)) == 134u, "IPv4-only revocation is not done here");
    auto not_proxy = Revoked::per_mn("mn1@op.example");
    not_proxy.flags = 0;
    BOOST_TEST(unsigned(r.ask(not_proxy)) == 128u, "no proxy binding to revoke without P");
    BOOST_TEST(r.mag.entries().size() == 2u, "nothing torn down");
    BOOST_TEST(r.sink.sessions.size() == 2u);
}

BOOST_AUTO_TEST_CASE(global_revocations_per_peer_and_per_realm) {
    Revoked r;
    BindingRevocationIndication realm;
    realm.trigger = 129;
    realm.flags = br_flag::kProxy | br_flag::kGlobal;
    realm.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "@other.example"});
    BOOST_TEST(unsigned(r.ask(realm)) == 131u, "no MN of that realm");
    realm.options.items.clear();
    BOOST_TEST(unsigned(r.ask(realm)) == 131u, "129 without its MN-ID");
    BindingRevocationIndication peer;
    peer.trigger = 128;
    peer.flags = br_flag::kProxy | br_flag::kGlobal;
    peer.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "x"});
    BOOST_TEST(unsigned(r.ask(peer)) == 134u, "Per-Peer Policy carries no options");
    BOOST_TEST(r.mag.entries().size() == 2u);
    realm.options.add(MobileNodeIdentifierOption{kMnIdSubtypeNai, "@op.example"});
    BOOST_TEST(unsigned(r.ask(realm)) == 0u);
    BOOST_TEST(r.mag.entries().empty(), "every MN of @op.example");
    BOOST_TEST(r.sink.sessions.empty());
}

BOOST_AUTO_TEST_CASE(a_per_peer_bri_revokes_every_mn_of_the_lma) {
    Revoked r;
    BindingRevocationIndication peer;
    peer.trigger = 128;
    peer.flags = br_flag::kProxy | br_flag::kGlobal;
    BOOST_TEST(unsigned(r.ask(peer)) == 0u);
    BOOST_TEST(r.mag.entries().empty());
    BOOST_TEST(r.sink.sessions.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(mag_heartbeat)

// The LMA asks a MAG address only once it spoke to us (a PBU, a heartbeat of its own).
BOOST_AUTO_TEST_CASE(a_peer_on_first_contact_is_asked_only_after_it_spoke) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 3, "MAG", true);
    const auto t0 = Clock::time_point{} + 100s;
    BOOST_TEST(hb.on_timer(t0).empty());
    BOOST_TEST(!hb.next_deadline().has_value());
    hb.heard(kHbLma, t0);
    auto sent = hb.on_timer(t0 + 1ms);
    BOOST_REQUIRE_EQUAL(sent.size(), 1u);
    BOOST_TEST((sent[0].kind == HeartbeatEvent::Kind::Send));
    hb.heard(kHbLma, t0 + 1ms);   // again: nothing changes
    BOOST_TEST(hb.on_timer(t0 + 2ms).empty());
}

BOOST_AUTO_TEST_CASE(a_request_every_interval_with_a_new_sequence_number_none_when_off) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 5000ms, 3);
    Clock::time_point now{};
    auto a = hb.on_timer(now);
    BOOST_REQUIRE_EQUAL(a.size(), 1u);
    BOOST_TEST((a[0].kind == HeartbeatEvent::Kind::Send));
    BOOST_TEST(!a[0].message.response());
    BOOST_TEST(hb.on_timer(now + 4999ms).empty());
    auto b = hb.on_timer(now + 5000ms);
    BOOST_REQUIRE_EQUAL(count_kind(b, HeartbeatEvent::Kind::Send), 1u);
    BOOST_TEST(b.back().message.sequence == a[0].message.sequence + 1);
    HeartbeatMonitor off({{kHbLocal, kHbLma}}, 0ms, 3);
    BOOST_TEST(off.on_timer(now).empty());
    BOOST_TEST(!off.next_deadline());
}

BOOST_AUTO_TEST_CASE(missing_heartbeats_take_the_path_down_once_and_an_answer_brings_it_up) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 3);
    Clock::time_point now{};
    std::vector<HeartbeatEvent> all;
    for (int i = 0; i <= 5; ++i) {   // sends at 0..5 s, none answered: misses at 1..5 s
        auto ev = hb.on_timer(now + std::chrono::seconds(i));
        all.insert(all.end(), ev.begin(), ev.end());
    }
    BOOST_TEST(count_kind(all, HeartbeatEvent::Kind::PeerDown) == 1u, "down once, at the third miss");
    BOOST_TEST(!hb.up(0));
    std::vector<HeartbeatEvent> ev;
    // An answer to an older request, or from another address, changes nothing.
    BOOST_TEST(!hb.on_message(kHbLma, response_to(all.front(), 1), now, ev));
    BOOST_TEST(!hb.on_message(kHbLocal, response_to(all.back(), 1), now, ev));
    BOOST_TEST(ev.empty());
    BOOST_TEST(hb.on_message(kHbLma, response_to(all.back(), 1), now, ev));
    BOOST_REQUIRE_EQUAL(ev.size(), 1u);
    BOOST_TEST((ev[0].kind == HeartbeatEvent::Kind::PeerUp));
    BOOST_TEST(hb.up(0));
}

BOOST_AUTO_TEST_CASE(a_changed_restart_counter_is_a_restart_of_the_lma) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 3);
    Clock::time_point now{};
    std::vector<HeartbeatEvent> ev;
    auto s1 = hb.on_timer(now);
    BOOST_TEST(hb.on_message(kHbLma, response_to(s1[0], 4), now, ev));
    BOOST_TEST(ev.empty(), "the first counter seen is no restart");
    auto s2 = hb.on_timer(now + 1s);
    BOOST_TEST(hb.on_message(kHbLma, response_to(s2[0], 4), now, ev));
    BOOST_TEST(ev.empty(), "the same counter: no restart");
    auto s3 = hb.on_timer(now + 2s);
    BOOST_TEST(hb.on_message(kHbLma, response_to(s3[0], 5), now, ev));
    BOOST_REQUIRE_EQUAL(ev.size(), 1u);
    BOOST_TEST((ev[0].kind == HeartbeatEvent::Kind::PeerRestarted));
    BOOST_TEST(ev[0].counter == 5u);
}

// What a restarted peer sent before `restarted_after` is of its old life: only its last answer
// with the old counter proves that. What it sent after, even before it fell silent, may be its new
// life's (a MAG back within the missed heartbeats registers its MNs before we mark it down): a
// later date would let go bindings it has just registered again.
BOOST_AUTO_TEST_CASE(a_restart_dates_from_the_last_answer_with_the_old_counter) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 2, "MAG", true);
    const Clock::time_point t0 = Clock::time_point{} + 100s;
    std::vector<HeartbeatEvent> ev;
    hb.heard(kHbLma, t0);
    auto s1 = hb.on_timer(t0);
    BOOST_TEST(hb.on_message(kHbLma, response_to(s1[0], 1), t0, ev));
    hb.heard(kHbLma, t0 + 500ms);    // old life or new: nothing says
    hb.on_timer(t0 + 1s);            // asked
    hb.on_timer(t0 + 2s);            // unanswered: a miss
    hb.heard(kHbLma, t0 + 2500ms);   // its new life's refreshes, before we mark it down
    auto s2 = hb.on_timer(t0 + 3s);  // the second miss: down
    BOOST_TEST(!hb.up(0));
    BOOST_TEST(hb.on_message(kHbLma, response_to(s2.back(), 2), t0 + 3s, ev));
    BOOST_REQUIRE_EQUAL(ev.size(), 2u);
    BOOST_TEST((ev[1].kind == HeartbeatEvent::Kind::PeerRestarted));
    BOOST_TEST((ev[1].restarted_after == t0), "its last answer with the old counter");
}

// A peer we hold down that speaks again (a PBU) is asked at once: its answer says whether it
// restarted without waiting out the interval.
BOOST_AUTO_TEST_CASE(a_peer_held_down_that_speaks_is_asked_at_once) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 1, "MAG", true);
    const Clock::time_point t0 = Clock::time_point{} + 100s;
    hb.heard(kHbLma, t0);
    hb.on_timer(t0);
    hb.on_timer(t0 + 1s);   // the first miss: down
    BOOST_TEST(!hb.up(0));
    BOOST_TEST(hb.on_timer(t0 + 1100ms).empty(), "nothing due before the interval");
    hb.heard(kHbLma, t0 + 1100ms);
    auto sent = hb.on_timer(t0 + 1100ms);
    BOOST_REQUIRE_EQUAL(count_kind(sent, HeartbeatEvent::Kind::Send), 1u);
    hb.heard(kHbLma, t0 + 1200ms);   // (while asked: not again)
    BOOST_TEST(hb.on_timer(t0 + 1200ms).empty());
}

// RFC 6275 §9.2: a peer that does not know MH Type 13 answers our request with a Binding Error
// (Status 2). Its path is not taken down for that (nor left down), and it is not asked again
// for kRefusedRetry; a Binding Error with no request of ours outstanding changes nothing.
BOOST_AUTO_TEST_CASE(a_peer_answering_heartbeats_with_a_binding_error_is_not_down_and_not_asked) {
    HeartbeatMonitor hb({{kHbLocal, kHbLma}}, 1000ms, 1);
    const Clock::time_point t0 = Clock::time_point{} + 100s;
    std::vector<HeartbeatEvent> ev;
    BOOST_TEST(!hb.on_refused(kHbLma, t0, ev), "nothing outstanding yet");
    hb.on_timer(t0);
    hb.on_timer(t0 + 1s);   // the first request unanswered: down (1 allowed)
    BOOST_TEST(!hb.up(0));
    BOOST_TEST(!hb.on_refused(kHbLocal, t0 + 1s, ev), "from another address");
    BOOST_TEST(hb.on_refused(kHbLma, t0 + 1s, ev));
    BOOST_REQUIRE_EQUAL(ev.size(), 1u);
    BOOST_TEST((ev[0].kind == HeartbeatEvent::Kind::PeerUp));
    BOOST_TEST(hb.up(0));
    BOOST_TEST(hb.on_timer(t0 + 1s + HeartbeatMonitor::kRefusedRetry - 1s).empty(), "not asked meanwhile");
    BOOST_TEST(hb.up(0));
    auto again = hb.on_timer(t0 + 1s + HeartbeatMonitor::kRefusedRetry);
    BOOST_TEST(count_kind(again, HeartbeatEvent::Kind::Send) == 1u, "asked again after the retry time");
    BOOST_TEST(count_kind(again, HeartbeatEvent::Kind::PeerDown) == 0u);
}

BOOST_AUTO_TEST_CASE(a_restarted_lma_gets_every_binding_refreshed_at_once) {
    Mag m(mag_yaml("192.0.2.1"));
    auto p1 = m.attach("mn1@op.example");
    m.answer(p1, [](auto& pba) {
        with_addresses(pba);
        pba.lifetime = 1000 / kLifetimeUnitSeconds;
    });
    BOOST_TEST(m.mag.on_timer(m.now + 10s).empty(), "no refresh due yet");
    auto out = m.mag.on_lma_restart(Ipv4Address::parse("192.0.2.1"), m.now + 10s);
    BOOST_REQUIRE_EQUAL(out.size(), 1u);
    BOOST_TEST(unsigned(out[0].pbu.options.find<HandoffIndicatorOption>()->value) == 5u, "a refresh (HI 5)");
    BOOST_TEST((out[0].pbu.options.find<HomeNetworkPrefixOption>()->prefix == kHnp), "of the prefix it holds");
    BOOST_TEST(m.mag.on_lma_restart(Ipv4Address::parse("192.0.2.99"), m.now + 10s).empty(), "another LMA: nothing");
}

BOOST_AUTO_TEST_SUITE_END()

// ---- The Binding Update List journal (issue 17) -----------------------------------------------

namespace {

struct RecordingJournal : BulJournalSink {
    std::map<std::string, std::string> records;   // MN-ID -> its last put, encoded
    unsigned puts = 0;
    void put(const BindingUpdateListEntry& p) override {
        records[p.mn_id] = encode_bul_entry(p);
        ++puts;
    }
    void erase(const std::string& id) override { records.erase(id); }
    std::vector<BindingUpdateListEntry> entries() const {
        std::vector<BindingUpdateListEntry> out;
        for (const auto& [id, r] : records) {
            out.push_back(decode_bul_entry(r));
        }
        return out;
    }
};

struct HoldingSink : RecordingSink {
    std::vector<std::uint32_t> held;
    std::vector<std::uint32_t> held_sessions() override { return held; }
};

} // namespace

BOOST_AUTO_TEST_SUITE(mag_journal)

BOOST_AUTO_TEST_CASE(an_entry_round_trips_and_a_refresh_is_not_a_change) {
    Mag m(mag_yaml("2001:db8:ffff::1"));
    RecordingJournal j;
    m.mag.attach_journal(&j);
    auto pbu = m.attach("mn1@op.example");
    BOOST_TEST(j.records.count("mn1@op.example") == 1u, "journaled at attach");
    m.answer(pbu, [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x5151});
    });
    const auto& e = m.entry("mn1@op.example");
    const std::string bytes = encode_bul_entry(e);
    BOOST_TEST(encode_bul_entry(decode_bul_entry(bytes)) == bytes, "every field round-trips");
    BOOST_TEST(j.records.at("mn1@op.example") == bytes, "the registration is journaled");
    BOOST_TEST(decode_bul_entry(bytes).key_uplink.value_or(0) == 0x5151u);
    const unsigned puts = j.puts;
    m.now += 3000s;   // the refresh
    auto refresh = m.mag.on_timer(m.now);
    BOOST_REQUIRE_EQUAL(refresh.size(), 1u);
    m.answer(refresh[0], [](auto& pba) {
        with_addresses(pba);
        pba.options.add(GreKeyOption{0x5151});
    });
    BOOST_TEST(j.puts == puts, "a plain refresh is not journaled");
    m.mag.detach("mn1@op.example", m.now);
    BOOST_TEST((decode_bul_entry(j.records.at("mn1@op.example")).state == BindingUpdateListEntry::State::Deregistering));
    try {
        decode_bul_entry(std::string_view(bytes).substr(0, 20));
        BOOST_FAIL("a cut entry decoded");
    } catch (const xpmip::state::RecordError& ex) {
        BOOST_TEST(std::string(ex.what()).find("cut short") != std::string::npos, ex.what());
    }
}

BOOST_AUTO_TEST_CASE(a_restart_brings_the_entry_back_with_its_keys_and_removes_orphans) {
    RecordingJournal j;
    std::uint32_t sid = 0, key_down = 0;
    {
        Mag m(mag_yaml("2001:db8:ffff::1"));
        m.mag.attach_journal(&j);
        m.answer(m.attach("mn2@op.example"), [](auto& pba) {
            pba.options.add(HomeNetworkPrefixOption{64, kHnp});
            pba.options.add(GreKeyOption{0x7777});
        });
        sid = m.entry("mn2@op.example").session_id;
        key_down = m.entry("mn2@op.example").key_downlink.value_or(0);
        m.attach("mn1@op.example");   // registering when the MAG dies
    }
    HoldingSink sink;
    sink.held = {sid, 999};   // its session, pinned, and an orphan
    MobileAccessGateway mag(parse_mag_config(config::load_string(mag_yaml("2001:db8:ffff::1"), "mag.yaml")), sink,
                            [] { return std::uint64_t{1} << 32; });
    mag.attach_journal(&j);
    const auto old_seq = decode_bul_entry(j.records.at("mn2@op.example")).sequence;
    auto r = mag.restore(j.entries(), Clock::time_point{} + 5000s);
    BOOST_TEST(r.bindings == 2u);
    BOOST_TEST(r.orphans_removed == 1u);
    BOOST_TEST(r.sessions_written == 1u);
    BOOST_TEST(sink.sessions.count(sid) == 1u, "its session written again as it was");
    BOOST_TEST(sink.sessions.at(sid).paths.at(0).key_uplink == 0x7777u);
    BOOST_TEST(sink.registered_calls == 1u, "the access link serves its addresses again");
    BOOST_REQUIRE_EQUAL(r.pbus.size(), 2u);
    for (const auto& p : r.pbus) {
        const auto id = p.pbu.options.find<MobileNodeIdentifierOption>()->identifier;
        const auto hi = unsigned(p.pbu.options.find<HandoffIndicatorOption>()->value);
        if (id == "mn2@op.example") {
            BOOST_TEST(hi == 5u, "a refresh");
            BOOST_TEST(p.pbu.options.find<GreKeyOption>()->key.value_or(0) == key_down, "the same downlink key");
            BOOST_TEST(p.pbu.sequence == static_cast<std::uint16_t>(old_seq + 257), "past what it may have sent");
        } else {
            BOOST_TEST(hi == 1u, "a registration under way goes on");
        }
    }
    BOOST_TEST(mag.attach("mn2@op.example", Clock::time_point{} + 5000s).empty(), "already there");
    BOOST_TEST(mag.entries().at("mn2@op.example").session_id == sid);
}

// A failed MN detached is gone from the journal too, and its session id is free again.
BOOST_AUTO_TEST_CASE(a_failed_mn_detached_is_erased_and_frees_its_session_id) {
    Mag m(mag_yaml("2001:db8:ffff::1") + "limits: {sessions: 1}\n");   // one session id: it must come back
    RecordingJournal j;
    m.mag.attach_journal(&j);
    auto pbu = m.attach("mn1@op.example");
    m.answer(pbu, [](auto& pba) { pba.status = static_cast<std::uint8_t>(Status::NotLmaForThisMobileNode); });
    BOOST_TEST((m.entry("mn1@op.example").state == BindingUpdateListEntry::State::Failed));
    m.mag.detach("mn1@op.example", m.now);
    BOOST_TEST(m.mag.entries().empty());
    BOOST_TEST(j.records.empty(), "the journal forgets it");
    m.now += 2s;
    BOOST_CHECK_NO_THROW(m.attach("mn1@op.example"));   // (no session id left, had it not come back)
}

BOOST_AUTO_TEST_CASE(an_entry_no_longer_configured_is_dropped_and_forgotten) {
    RecordingJournal j;
    {
        Mag m(mag_yaml("2001:db8:ffff::1"));
        m.mag.attach_journal(&j);
        m.answer(m.attach("mn1@op.example"), with_addresses);
    }
    auto yaml = mag_yaml("2001:db8:ffff::1");
    yaml = yaml.substr(0, yaml.find("  - {id: mn1@op.example"));
    yaml += "  - {id: mn3@op.example, mac: '02:00:00:00:01:03', interface: acc0}\n";
    HoldingSink sink;
    MobileAccessGateway mag(parse_mag_config(config::load_string(yaml, "mag.yaml")), sink,
                            [] { return std::uint64_t{1} << 32; });
    mag.attach_journal(&j);
    auto r = mag.restore(j.entries(), Clock::time_point{} + 10s);
    BOOST_TEST(r.dropped == 1u);
    BOOST_TEST(r.bindings == 0u);
    BOOST_TEST(j.records.empty(), "the journal forgets it too");
}

BOOST_AUTO_TEST_SUITE_END()
