// The data plane's part of the metrics (README "Metrics"), read from the maps off the event loop:
// drops and other events by reason at every scrape (one small per-CPU array), and traffic and
// path state per peer and path label from a background pass over the sessions and their routes
// (a million sessions cost ~1 s of one core there, so the pass runs every `interval`, and only
// while someone scrapes; a scrape returns the last pass and costs microseconds).
#pragma once

#include "dataplane/maps.hpp"

#include <prometheus/collectable.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>

namespace xpmip::control {

// xpmip_dataplane_events_total{counter}: the counters map at the moment of the scrape.
class DataplaneEvents : public prometheus::Collectable {
public:
    explicit DataplaneEvents(const dataplane::MapSet& maps) : maps_(maps) {}
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    const dataplane::MapSet& maps_;
};

// What one pass found for one (peer address, If-Label): paths up and down, and the packets and
// inner octets of the sessions that exist now, both ways.
struct PathTraffic {
    std::uint64_t up = 0, down = 0;
    std::uint64_t tx_packets = 0, tx_bytes = 0;   // into the tunnel toward the peer
    std::uint64_t rx_packets = 0, rx_bytes = 0;   // out of the tunnel from the peer
};
using PathKey = std::tuple<std::string, unsigned>;   // (peer's tunnel address, If-Label)
using TrafficByPath = std::map<PathKey, PathTraffic>;

// One pass over the maps (what the background thread runs; the tests call it directly).
TrafficByPath read_path_traffic(const dataplane::MapSet& maps);

class PeerTraffic : public prometheus::Collectable {
public:
    PeerTraffic(const dataplane::MapSet& maps, std::chrono::milliseconds interval);
    ~PeerTraffic() override;
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    void run();

    const dataplane::MapSet& maps_;
    std::chrono::milliseconds interval_;
    mutable std::mutex mutex_;
    mutable std::condition_variable wake_;
    mutable std::chrono::steady_clock::time_point last_request_{};
    mutable bool requested_ = false;
    TrafficByPath last_;
    bool stop_ = false;
    std::thread thread_;   // last: started when everything above exists
};

} // namespace xpmip::control
