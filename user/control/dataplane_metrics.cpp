#include "control/dataplane_metrics.hpp"

#include "common/address.hpp"
#include "dataplane/stats.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xpmip::control {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric sample(std::vector<ClientMetric::Label> labels, std::uint64_t value, MetricType type) {
    ClientMetric m;
    m.label = std::move(labels);
    (type == MetricType::Counter ? m.counter.value : m.gauge.value) = static_cast<double>(value);
    return m;
}

PathTraffic& traffic_of(TrafficByPath& out, const xpmip_path& p) {
    return out[PathKey{to_string(from_mapped(p.remote)), p.label}];
}

void count_path(TrafficByPath& out, const xpmip_path& p, const xpmip_counter& tx, const xpmip_counter& rx) {
    auto& t = traffic_of(out, p);
    ++((p.flags & XPMIP_PATH_UP) ? t.up : t.down);
    t.tx_packets += tx.packets;
    t.tx_bytes += tx.bytes;
    t.rx_packets += rx.packets;
    t.rx_bytes += rx.bytes;
}

// What a route (an MN route or a station) sent into the tunnel; multipath sessions count per path
// in session_paths instead.
void count_route(TrafficByPath& out, const xpmip_route& r) {
    if (r.session == 0 || r.npaths > 1) {
        return;
    }
    auto& t = traffic_of(out, r.path);
    t.tx_packets += r.tx.packets;
    t.tx_bytes += r.tx.bytes;
}

} // namespace

std::vector<MetricFamily> DataplaneEvents::Collect() const {
    MetricFamily f{"xpmip_dataplane_events_total", "Data plane counters: drops by reason and other events",
                   MetricType::Counter, {}};
    try {
        const auto counters = dataplane::read_counters(maps_);
        for (unsigned i = 0; i < counters.size(); ++i) {
            f.metric.push_back(sample({{"counter", std::string(dataplane::stat_name(i))}}, counters[i], MetricType::Counter));
        }
    } catch (const std::exception& e) {
        spdlog::warn("metrics: reading the data plane counters: {}", e.what());
    }
    return {f};
}

TrafficByPath read_path_traffic(const dataplane::MapSet& maps) {
    using dataplane::MapId;
    TrafficByPath out;
    maps.for_each(MapId::Sessions, sizeof(std::uint32_t), sizeof(xpmip_session), [&](const auto* k, const auto* v) {
        xpmip_session s;
        std::uint32_t id;
        std::memcpy(&id, k, sizeof id);
        std::memcpy(&s, v, sizeof s);
        if (s.id == 0 || s.id != id) {
            return;
        }
        if (s.npaths <= 1) {
            count_path(out, s.path, s.tx, s.rx);
        }
    });
    maps.for_each(MapId::SessionPaths, sizeof(std::uint32_t), sizeof(xpmip_paths), [&](const auto*, const auto* v) {
        xpmip_paths mp;
        std::memcpy(&mp, v, sizeof mp);
        for (std::uint32_t i = 0; i < mp.npaths && i < XPMIP_MAX_PATHS; ++i) {
            count_path(out, mp.paths[i], mp.tx[i], mp.rx[i]);
        }
    });
    maps.for_each(MapId::RoutesV4, sizeof(xpmip_route4_key), sizeof(xpmip_route), [&](const auto*, const auto* v) {
        xpmip_route r;
        std::memcpy(&r, v, sizeof r);
        count_route(out, r);
    });
    maps.for_each(MapId::RoutesV6, sizeof(xpmip_route6_key), sizeof(xpmip_route), [&](const auto*, const auto* v) {
        xpmip_route r;
        std::memcpy(&r, v, sizeof r);
        count_route(out, r);
    });
    maps.for_each(MapId::Stations, sizeof(xpmip_station_key), sizeof(xpmip_station), [&](const auto*, const auto* v) {
        xpmip_station st;
        std::memcpy(&st, v, sizeof st);
        count_route(out, st.route);
    });
    return out;
}

PeerTraffic::PeerTraffic(const dataplane::MapSet& maps, std::chrono::milliseconds interval)
    : maps_(maps), interval_(interval), thread_([this] { run(); }) {}

PeerTraffic::~PeerTraffic() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

// A pass when a scrape asked for one (at most one per interval): with nobody scraping, a million
// sessions are not read for nothing. A scrape returns the last pass's figures.
void PeerTraffic::run() {
    // Below signaling: on a busy machine the pass over a million sessions waits, PBUs do not
    // (Linux: a thread's nice value is its own).
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10) != 0) {
        spdlog::debug("metrics: the traffic thread keeps its priority: {}", std::strerror(errno));
    }
    std::unique_lock lock(mutex_);
    for (;;) {
        wake_.wait(lock, [this] { return stop_ || requested_; });
        if (stop_) {
            return;
        }
        lock.unlock();
        TrafficByPath fresh;
        try {
            fresh = read_path_traffic(maps_);
        } catch (const std::exception& e) {
            spdlog::warn("metrics: reading the sessions' traffic: {}", e.what());
        }
        lock.lock();
        last_ = std::move(fresh);
        requested_ = false;
    }
}

std::vector<MetricFamily> PeerTraffic::Collect() const {
    std::unique_lock lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (!requested_ && (last_request_ == std::chrono::steady_clock::time_point{} || now - last_request_ >= interval_)) {
        requested_ = true;
        last_request_ = now;
        wake_.notify_all();
    }
    MetricFamily paths{"xpmip_paths", "Tunnel paths of the sessions now, by peer address, If-Label and state",
                       MetricType::Gauge, {}};
    MetricFamily packets{"xpmip_path_packets", "Packets of the sessions now, by peer address, If-Label and direction",
                         MetricType::Gauge, {}};
    MetricFamily bytes{"xpmip_path_bytes", "Inner octets of the sessions now, by peer address, If-Label and direction",
                       MetricType::Gauge, {}};
    for (const auto& [key, t] : last_) {
        const auto& [remote, label] = key;
        const ClientMetric::Label peer{"peer", remote}, lab{"label", std::to_string(label)};
        paths.metric.push_back(sample({lab, peer, {"state", "up"}}, t.up, MetricType::Gauge));
        paths.metric.push_back(sample({lab, peer, {"state", "down"}}, t.down, MetricType::Gauge));
        packets.metric.push_back(sample({{"direction", "tx"}, lab, peer}, t.tx_packets, MetricType::Gauge));
        packets.metric.push_back(sample({{"direction", "rx"}, lab, peer}, t.rx_packets, MetricType::Gauge));
        bytes.metric.push_back(sample({{"direction", "tx"}, lab, peer}, t.tx_bytes, MetricType::Gauge));
        bytes.metric.push_back(sample({{"direction", "rx"}, lab, peer}, t.rx_bytes, MetricType::Gauge));
    }
    return {paths, packets, bytes};
}

} // namespace xpmip::control
