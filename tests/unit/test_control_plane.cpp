// The control plane's bookkeeping, in-process: the log limiter (README "Logs under attack") and
// the binding counts behind the `xpmip_bindings` gauge (README "Metrics").
#include "agent/binding_error.hpp"
#include "common/log_limit.hpp"
#include "control/metrics.hpp"

#include <boost/test/unit_test.hpp>

#include <string>

using namespace xpmip;
using namespace std::chrono_literals;
using Clock = LogLimiter::Clock;

BOOST_AUTO_TEST_SUITE(control_plane)

BOOST_AUTO_TEST_CASE(log_limiter_writes_a_burst_per_source_and_reason_and_counts_the_rest) {
    LogLimiter lim({.burst = 5, .period = 10s, .max_sources = 100});
    const auto t0 = Clock::time_point{} + 1000s;
    unsigned written = 0;
    for (int i = 0; i < 30; ++i) {
        written += lim.admit("2001:db8::1", "malformed", t0 + std::chrono::milliseconds(i));
    }
    BOOST_TEST(written == 5u);
    BOOST_TEST(lim.admit("2001:db8::2", "malformed", t0), "another source has its own burst");
    BOOST_TEST(lim.admit("2001:db8::1", "unsupported", t0), "another reason too");
    auto taken = lim.take_suppressed();
    BOOST_TEST(taken["malformed"] == 25u);
    BOOST_TEST(lim.take_suppressed().empty(), "counted once");
    // A period later the source may write again, and its first line says what was held back.
    std::uint64_t suppressed = 0;
    BOOST_TEST(lim.admit("2001:db8::1", "malformed", t0 + 10s, &suppressed));
    BOOST_TEST(suppressed == 25u);
    BOOST_TEST(lim.admit("2001:db8::1", "malformed", t0 + 10s, &suppressed));
    BOOST_TEST(suppressed == 0u);
}

// RFC 6275 §9.2: Binding Errors are rate limited: a burst of the rate, then the rate.
BOOST_AUTO_TEST_CASE(binding_errors_are_limited_to_their_rate) {
    agent::BindingErrorLimit limit(10);
    const auto t0 = Clock::time_point{} + 1000s;
    unsigned sent = 0;
    for (int i = 0; i < 1000; ++i) {   // 1000 in 100 ms
        sent += limit.admit(t0 + std::chrono::microseconds(i * 100));
    }
    BOOST_TEST(sent >= 10u, "the burst of 10");
    BOOST_TEST(sent <= 11u, "and at most one token refilled in 100 ms");
    sent = 0;
    for (int i = 0; i < 100; ++i) {   // one every 10 ms for a second after that
        sent += limit.admit(t0 + 1s + std::chrono::milliseconds(i * 10));
    }
    BOOST_TEST(sent >= 10u);
    BOOST_TEST(sent <= 20u, "about the rate, never the flood");
}

// RFC 6275 §9.3.3: no Binding Error to a source that is not a unicast address.
BOOST_AUTO_TEST_CASE(binding_errors_go_to_unicast_sources_only) {
    for (const char* a : {"192.0.2.1", "2001:db8::1", "fe80::1"}) {
        BOOST_TEST(is_unicast(parse_ip_address(a)), a);
    }
    for (const char* a : {"0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"}) {
        BOOST_TEST(!is_unicast(parse_ip_address(a)), a);
    }
}

BOOST_AUTO_TEST_CASE(log_limiter_memory_is_bounded_under_spoofed_sources) {
    LogLimiter lim({.burst = 2, .period = 10s, .max_sources = 8});
    const auto t0 = Clock::time_point{} + 1000s;
    unsigned written = 0;
    for (int i = 0; i < 10000; ++i) {
        written += lim.admit("198.51.100." + std::to_string(i), "malformed", t0);
    }
    BOOST_TEST(lim.tracked() <= 9u, "8 sources and the shared entry");
    BOOST_TEST_INFO("written " << written);
    BOOST_TEST(written == 8u + 2u, "one line from each tracked source, then one burst for all the rest");
    BOOST_TEST(lim.take_suppressed()["malformed"] == 10000u - written);
    // Idle entries are swept: later sources are tracked on their own again.
    for (int i = 0; i < 4; ++i) {
        lim.admit("203.0.113." + std::to_string(i), "malformed", t0 + 30s);
    }
    BOOST_TEST(lim.tracked() <= 5u);
}

BOOST_AUTO_TEST_CASE(binding_counts_move_between_classes) {
    control::BindingClassCounts counts;
    const control::BindingClass reg{"registered", "1", "mag-a", "gre"}, held{"deregistered", "1", "mag-a", "gre"};
    const auto r = counts.id_of(reg), h = counts.id_of(held);
    BOOST_TEST(counts.id_of(reg) == r, "interned");
    BOOST_TEST(r != h);
    counts.move(0, r);
    counts.move(0, r);
    BOOST_TEST(counts.count(reg) == 2);
    counts.move(r, h);
    BOOST_TEST(counts.count(reg) == 1);
    BOOST_TEST(counts.count(held) == 1);
    counts.move(h, 0);
    BOOST_TEST(counts.count(held) == 0);
    BOOST_TEST(counts.count({"registered", "2", "mag-a", "gre"}) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

// The agents' event loop: each deadline has a timer of its own (the MAG's binding update list
// timers and its heartbeats: with one shared timer the second replaced the first, and refreshes
// stopped).
#include "agent/event_loop.hpp"

BOOST_AUTO_TEST_SUITE(event_loop)

BOOST_AUTO_TEST_CASE(two_deadlines_both_fire_each_at_its_own_time) {
    using xpmip::agent::Clock;
    xpmip::agent::EventLoop loop;
    const auto start = Clock::now();
    std::optional<Clock::time_point> a = start + std::chrono::milliseconds(10);
    std::optional<Clock::time_point> b = start + std::chrono::milliseconds(500);
    std::optional<Clock::time_point> fired_a, fired_b;
    loop.deadline("a", [&] { return a; }, [&] {
        fired_a = Clock::now();
        a.reset();
    });
    loop.deadline("b", [&] { return b; }, [&] {
        fired_b = Clock::now();
        b.reset();
        loop.stop();
    });
    loop.run();
    BOOST_REQUIRE(fired_a);
    BOOST_REQUIRE(fired_b);
    BOOST_TEST((*fired_a < start + std::chrono::milliseconds(500)), "a did not wait for b's time");
    BOOST_TEST((*fired_b >= start + std::chrono::milliseconds(500)));
}

BOOST_AUTO_TEST_SUITE_END()
