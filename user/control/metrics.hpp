// Prometheus metrics (README "Metrics") through prometheus-cpp: a registry of aggregates that the
// event loop keeps up to date incrementally (atomic counters and gauges), served by
// prometheus-cpp's exposer (civetweb) on its own threads. A scrape therefore costs the event loop
// nothing and a slow or stalled HTTP client only ties up one of the exposer's threads, never
// signaling. No series is per session: a million would be a cardinality problem for any
// Prometheus server; per-session detail is `xpmip show`.
#pragma once

#include "wire/numbers.hpp"

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace prometheus {
class Exposer;
}

namespace xpmip::control {

// The metrics endpoint's listen address, "address:port" ("127.0.0.1:9430", "[::1]:9430", ":9430"
// for every address), as civetweb's listening_ports. Throws std::invalid_argument naming it.
std::string civetweb_listen(const std::string& listen);

// Threads and timeouts of the endpoint: how many scrapes at once, and how long one client may
// take to send its request or read its answer before civetweb closes it.
struct MetricsServing {
    unsigned threads = 4;
    unsigned request_timeout_ms = 5000;
};

// What the bindings gauge is broken down by (LMA: state, realm, peer, encapsulation; MAG: state,
// peer (the LMA), encapsulation; the realm is then empty and not a label).
struct BindingClass {
    std::string state;     // "registered", "deregistered" (LMA hold), "pending" (MAG)
    std::string realm;
    std::string peer;
    std::string encap;
    auto operator<=>(const BindingClass&) const = default;
};

class AgentMetrics {
public:
    explicit AgentMetrics(std::string role);   // "lma" or "mag"
    ~AgentMetrics();
    AgentMetrics(const AgentMetrics&) = delete;
    AgentMetrics& operator=(const AgentMetrics&) = delete;

    // Serve GET /metrics on `listen` from now on (throws naming the address when it cannot bind).
    void serve(const std::string& listen, const MetricsServing& serving = {});
    // A collector read at every scrape, on the exposer's thread (kept alive here).
    void add(std::shared_ptr<prometheus::Collectable> collectable);
    prometheus::Registry& registry() { return *registry_; }

    // Signaling. LMA: PBUs received, PBAs sent; MAG: PBUs sent, PBAs received. `peer` is the
    // configured MAG name at the LMA ("unknown" for an address that is none), the LMA at the MAG.
    void pbu(const std::string& peer);
    void pba(const std::string& peer, wire::Status status);
    void malformed();
    // Signaling that arrived on an interface it may not come from (README "Trust boundaries").
    void refused_interface();
    void log_suppressed(std::string_view reason, std::uint64_t lines);
    // RFC 6275 Binding Errors: "sent", "rate_limited" or "not_unicast" (not sent), "received".
    void binding_error(const std::string& event);
    // The bindings of one class now: a gauge (classes that become empty stay at 0).
    void set_bindings(const BindingClass& c, std::int64_t count);

    std::uint64_t malformed_count() const;
    // The PBAs counted for `peer` so far, by status code (`show peers`).
    std::map<int, std::uint64_t> pba_counts(const std::string& peer) const;
    std::uint64_t refused_interface_count() const;

private:
    prometheus::Counter& counter_of(std::map<std::string, prometheus::Counter*>& cache,
                                    prometheus::Family<prometheus::Counter>& family, const std::string& label,
                                    const std::string& value);

    std::string role_;
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Counter>& pbu_family_;
    prometheus::Family<prometheus::Counter>& pba_family_;
    prometheus::Family<prometheus::Counter>& suppressed_family_;
    prometheus::Family<prometheus::Counter>& binding_error_family_;
    prometheus::Family<prometheus::Gauge>& bindings_family_;
    prometheus::Counter& malformed_;
    prometheus::Counter& refused_interface_;
    std::map<std::string, prometheus::Counter*> pbu_;
    std::map<std::string, prometheus::Counter*> binding_error_;
    std::map<std::tuple<std::string, int>, prometheus::Counter*> pba_;
    std::map<std::string, prometheus::Counter*> suppressed_;
    std::map<BindingClass, prometheus::Gauge*> bindings_;
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
    std::unique_ptr<prometheus::Exposer> exposer_;   // last member: stops before the rest goes
};

// Binding counts by class, kept as bindings change: every binding remembers the id of the class
// it is counted in (0: none) and moves when its class changes. publish() sets the gauges of the
// classes that changed since the last publish (the event loop, after a wake-up).
class BindingClassCounts {
public:
    using Id = std::uint16_t;
    Id id_of(const BindingClass& c);                 // interned: the same class, the same id
    // Count a binding under `to` instead of `from` (0: not counted); returns `to`.
    Id move(Id from, Id to);
    std::int64_t count(const BindingClass& c) const;
    // Bindings in `state` by peer (`show peers`): a walk of the classes, not of the bindings.
    std::map<std::string, std::int64_t> by_peer(const std::string& state) const;
    void publish(AgentMetrics& metrics);

private:
    std::map<BindingClass, Id> ids_;
    std::vector<BindingClass> classes_;              // by id - 1
    std::vector<std::int64_t> counts_;
    std::vector<Id> dirty_;
};

} // namespace xpmip::control
