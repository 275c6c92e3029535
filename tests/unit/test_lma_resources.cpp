// Pools and key allocation of the LMA (user/lma/resources): what RFC 5845 §3.3 and RFC 5213
// §5.3 ask of them, checked without a process or a clock.
#include "lma/resources.hpp"

#include <boost/test/unit_test.hpp>

#include <set>

using namespace xpmip;
using namespace xpmip::lma;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(lma_resources)

BOOST_AUTO_TEST_CASE(keys_are_unique_never_0_and_rest_before_reuse) {
    IndexAllocator keys(1, 4, 10s);
    const auto t0 = Clock::time_point{} + 100s;
    std::set<std::uint64_t> got;
    for (int i = 0; i < 4; ++i) {
        auto k = keys.allocate(t0);
        BOOST_REQUIRE(k);
        BOOST_TEST(*k != 0u);
        got.insert(*k);
    }
    BOOST_TEST(got.size() == 4u);
    BOOST_TEST(!keys.allocate(t0).has_value());   // exhausted
    keys.release(2, t0);
    BOOST_TEST(!keys.allocate(t0 + 9s).has_value(), "a released key rests MinDelayBeforeBCEDelete");
    auto again = keys.allocate(t0 + 10s);
    BOOST_REQUIRE(again);
    BOOST_TEST(*again == 2u);
}

BOOST_AUTO_TEST_CASE(the_used_set_counts_bits_across_pages) {
    PagedBitset b;
    for (std::uint64_t v : {0ull, 4095ull, 4096ull, 1ull << 40}) {
        BOOST_TEST(b.set(v));
        BOOST_TEST(!b.set(v), "set twice");
        BOOST_TEST(b.test(v));
    }
    BOOST_TEST(b.count() == 4u);
    BOOST_TEST(!b.test(1), "a neighbour on the same page");
    BOOST_TEST(!b.test((1ull << 40) + 1));
    BOOST_TEST(b.reset(4096));
    BOOST_TEST(!b.reset(4096));
    BOOST_TEST(!b.test(4096));
    BOOST_TEST(b.test(4095));
    BOOST_TEST(b.count() == 3u);
    BOOST_TEST(b.set(4097), "a freed page comes back");
    BOOST_TEST(b.count() == 4u);
    // A large range costs nothing until used: the uplink keys span up to 2^32.
    IndexAllocator keys(1, 0xffffffffull, 0s);
    BOOST_TEST(keys.reserve(0xfffffff0ull));
    BOOST_TEST(keys.in_use(0xfffffff0ull));
    BOOST_TEST(keys.used() == 1u);
}

BOOST_AUTO_TEST_CASE(rolled_back_allocations_come_back_at_once) {
    IndexAllocator ids(1, 2, 10s);
    const auto t0 = Clock::time_point{} + 1s;
    auto a = ids.allocate(t0);
    auto b = ids.allocate(t0);
    BOOST_REQUIRE(a && b);
    ids.release_now(*a);
    auto c = ids.allocate(t0);
    BOOST_REQUIRE(c);
    BOOST_TEST(*c == *a);
}

BOOST_AUTO_TEST_CASE(ipv4_pool_skips_network_broadcast_router_and_static_addresses) {
    const auto pool = Ipv4Prefix::parse("10.0.0.0/29");   // hosts .1-.6
    Ipv4Pool p(pool, Ipv4Address::parse("10.0.0.1"), 0s);
    BOOST_TEST(p.reserve(Ipv4Address::parse("10.0.0.3")));
    BOOST_TEST(!p.reserve(Ipv4Address::parse("10.0.0.3")), "reserved twice");
    BOOST_TEST(!p.reserve(Ipv4Address::parse("10.0.1.3")), "outside the pool");
    std::set<std::string> got;
    const auto t0 = Clock::time_point{} + 1s;
    while (auto a = p.allocate(t0)) {
        got.insert(a->to_string());
    }
    BOOST_TEST((got == std::set<std::string>{"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
}

BOOST_AUTO_TEST_CASE(two_realms_share_one_private_range) {
    const auto t0 = Clock::time_point{} + 1s;
    Ipv4Pool a(Ipv4Prefix::parse("10.0.0.0/16"), Ipv4Address::parse("10.0.0.1"), 0s);
    Ipv4Pool b(Ipv4Prefix::parse("10.0.0.0/16"), Ipv4Address::parse("10.0.0.1"), 0s);
    BOOST_TEST(a.allocate(t0)->to_string() == "10.0.0.2");
    BOOST_TEST(b.allocate(t0)->to_string() == "10.0.0.2");
}

BOOST_AUTO_TEST_CASE(ipv6_pool_hands_out_distinct_slash64s_inside_the_pool) {
    const auto t0 = Clock::time_point{} + 1s;
    Ipv6PrefixPool p(Ipv6Prefix::parse("2001:db8:a::/62"), 64, 5s);
    std::set<std::string> got;
    while (auto x = p.allocate(t0)) {
        BOOST_TEST(x->length == 64);
        BOOST_TEST(Ipv6Prefix::parse("2001:db8:a::/62").contains(x->address));
        got.insert(x->to_string());
    }
    BOOST_TEST((got == std::set<std::string>{"2001:db8:a::/64", "2001:db8:a:1::/64", "2001:db8:a:2::/64",
                                             "2001:db8:a:3::/64"}));
    p.release(Ipv6Prefix::parse("2001:db8:a:2::/64"), t0);
    BOOST_TEST(!p.allocate(t0 + 4s).has_value());
    BOOST_TEST(p.allocate(t0 + 5s)->to_string() == "2001:db8:a:2::/64");
    BOOST_TEST(!p.reserve(Ipv6Prefix::parse("2001:db8:a:2::/63")), "another length is not one of the pool's");
}

BOOST_AUTO_TEST_SUITE_END()
