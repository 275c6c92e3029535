#include "control/metrics.hpp"

#include <fmt/format.h>
#include <prometheus/exposer.h>

#include <arpa/inet.h>

#include <algorithm>
#include <stdexcept>

namespace xpmip::control {

std::string civetweb_listen(const std::string& listen) {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        throw std::invalid_argument(fmt::format("metrics: listen address '{}' is not address:port", listen));
    }
    std::string host = listen.substr(0, colon);
    const std::string port_text = listen.substr(colon + 1);
    int port = -1;
    if (!port_text.empty() && std::all_of(port_text.begin(), port_text.end(), ::isdigit) && port_text.size() <= 5) {
        port = std::stoi(port_text);
    }
    if (port <= 0 || port > 65535) {
        throw std::invalid_argument(fmt::format("metrics: listen address '{}': port '{}' is not 1-65535", listen, port_text));
    }
    if (host.empty()) {
        return fmt::format("+{}", port);   // civetweb: every IPv4 and IPv6 address
    }
    const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
    const std::string bare = bracketed ? host.substr(1, host.size() - 2) : host;
    unsigned char buf[16];
    if (inet_pton(AF_INET6, bare.c_str(), buf) == 1) {
        return fmt::format("[{}]:{}", bare, port);
    }
    if (!bracketed && inet_pton(AF_INET, bare.c_str(), buf) == 1) {
        return fmt::format("{}:{}", bare, port);
    }
    throw std::invalid_argument(fmt::format("metrics: listen address '{}': '{}' is not an IPv4 or IPv6 address", listen, host));
}

AgentMetrics::AgentMetrics(std::string role)
    : role_(std::move(role)), registry_(std::make_shared<prometheus::Registry>()),
      pbu_family_(prometheus::BuildCounter()
                      .Name(role_ == "lma" ? "xpmip_pbu_received_total" : "xpmip_pbu_sent_total")
                      .Help(role_ == "lma" ? "Proxy Binding Updates received, by peer (MAG)"
                                           : "Proxy Binding Updates sent (retransmissions included), by peer (LMA)")
                      .Register(*registry_)),
      pba_family_(prometheus::BuildCounter()
                      .Name(role_ == "lma" ? "xpmip_pba_sent_total" : "xpmip_pba_received_total")
                      .Help(role_ == "lma" ? "Proxy Binding Acknowledgements sent: registrations and rejections by "
                                             "status code and peer"
                                           : "Proxy Binding Acknowledgements received, by status code and peer")
                      .Register(*registry_)),
      suppressed_family_(prometheus::BuildCounter()
                             .Name("xpmip_log_suppressed_total")
                             .Help("Log lines not written by the rate limit, by reason")
                             .Register(*registry_)),
      binding_error_family_(prometheus::BuildCounter()
                                .Name("xpmip_binding_errors_total")
                                .Help("RFC 6275 Binding Errors: sent (an MH Type we do not know), not sent by the "
                                      "rate limit, received")
                                .Register(*registry_)),
      bindings_family_(prometheus::BuildGauge()
                           .Name("xpmip_bindings")
                           .Help(role_ == "lma" ? "Binding cache entries by state, realm, peer and encapsulation"
                                                : "Binding update list entries by state, peer and encapsulation")
                           .Register(*registry_)),
      malformed_(prometheus::BuildCounter()
                     .Name("xpmip_signaling_malformed_total")
                     .Help("Signaling messages dropped as malformed")
                     .Register(*registry_)
                     .Add({})),
      refused_interface_(prometheus::BuildCounter()
                             .Name("xpmip_signaling_refused_total")
                             .Help("Signaling messages dropped unread: they arrived on an interface signaling may not "
                                   "come from")
                             .Register(*registry_)
                             .Add({{"reason", "interface"}})) {}

AgentMetrics::~AgentMetrics() = default;

void AgentMetrics::serve(const std::string& listen, const MetricsServing& serving) {
    const std::string ports = civetweb_listen(listen);
    try {
        exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
            "listening_ports", ports, "num_threads", std::to_string(serving.threads), "request_timeout_ms",
            std::to_string(serving.request_timeout_ms), "enable_keep_alive", "no"});
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("metrics: cannot listen on {}: {}", listen, e.what()));
    }
    exposer_->RegisterCollectable(registry_);
    for (const auto& c : collectables_) {
        exposer_->RegisterCollectable(c);
    }
}

void AgentMetrics::add(std::shared_ptr<prometheus::Collectable> collectable) {
    collectables_.push_back(collectable);
    if (exposer_) {
        exposer_->RegisterCollectable(collectables_.back());
    }
}

prometheus::Counter& AgentMetrics::counter_of(std::map<std::string, prometheus::Counter*>& cache,
                                              prometheus::Family<prometheus::Counter>& family, const std::string& label,
                                              const std::string& value) {
    auto it = cache.find(value);
    if (it == cache.end()) {
        it = cache.emplace(value, &family.Add({{label, value}})).first;
    }
    return *it->second;
}

void AgentMetrics::pbu(const std::string& peer) { counter_of(pbu_, pbu_family_, "peer", peer).Increment(); }

void AgentMetrics::pba(const std::string& peer, wire::Status status) {
    const auto key = std::tuple{peer, static_cast<int>(status)};
    auto it = pba_.find(key);
    if (it == pba_.end()) {
        auto& c = pba_family_.Add({{"peer", peer},
                                   {"code", std::to_string(static_cast<int>(status))},
                                   {"status", std::string(wire::status_name(status))}});
        it = pba_.emplace(key, &c).first;
    }
    it->second->Increment();
}

void AgentMetrics::malformed() { malformed_.Increment(); }

void AgentMetrics::refused_interface() { refused_interface_.Increment(); }

std::uint64_t AgentMetrics::refused_interface_count() const {
    return static_cast<std::uint64_t>(refused_interface_.Value());
}

std::map<int, std::uint64_t> AgentMetrics::pba_counts(const std::string& peer) const {
    std::map<int, std::uint64_t> out;
    for (auto it = pba_.lower_bound({peer, 0}); it != pba_.end() && std::get<0>(it->first) == peer; ++it) {
        out[std::get<1>(it->first)] = static_cast<std::uint64_t>(it->second->Value());
    }
    return out;
}

std::uint64_t AgentMetrics::malformed_count() const { return static_cast<std::uint64_t>(malformed_.Value()); }

void AgentMetrics::log_suppressed(std::string_view reason, std::uint64_t lines) {
    counter_of(suppressed_, suppressed_family_, "reason", std::string(reason)).Increment(static_cast<double>(lines));
}

void AgentMetrics::binding_error(const std::string& event) {
    counter_of(binding_error_, binding_error_family_, "event", event).Increment();
}

void AgentMetrics::set_bindings(const BindingClass& c, std::int64_t count) {
    auto it = bindings_.find(c);
    if (it == bindings_.end()) {
        std::map<std::string, std::string> labels{{"state", c.state}, {"peer", c.peer}, {"encap", c.encap}};
        if (role_ == "lma") {
            labels.emplace("realm", c.realm);
        }
        it = bindings_.emplace(c, &bindings_family_.Add(labels)).first;
    }
    it->second->Set(static_cast<double>(count));
}

BindingClassCounts::Id BindingClassCounts::id_of(const BindingClass& c) {
    if (auto it = ids_.find(c); it != ids_.end()) {
        return it->second;
    }
    if (classes_.size() >= 0xffff) {
        throw std::length_error("binding classes: more than 65535 (state, realm, peer, encapsulation) combinations");
    }
    classes_.push_back(c);
    counts_.push_back(0);
    const Id id = static_cast<Id>(classes_.size());
    ids_.emplace(c, id);
    return id;
}

BindingClassCounts::Id BindingClassCounts::move(Id from, Id to) {
    if (from == to) {
        return to;
    }
    for (auto [id, delta] : {std::pair{from, -1}, std::pair{to, 1}}) {
        if (id == 0) {
            continue;
        }
        counts_.at(id - 1u) += delta;
        dirty_.push_back(id);
    }
    return to;
}

std::int64_t BindingClassCounts::count(const BindingClass& c) const {
    auto it = ids_.find(c);
    return it == ids_.end() ? 0 : counts_[it->second - 1u];
}

std::map<std::string, std::int64_t> BindingClassCounts::by_peer(const std::string& state) const {
    std::map<std::string, std::int64_t> out;
    for (std::size_t i = 0; i < classes_.size(); ++i) {
        if (classes_[i].state == state) {
            out[classes_[i].peer] += counts_[i];
        }
    }
    return out;
}

void BindingClassCounts::publish(AgentMetrics& metrics) {
    std::sort(dirty_.begin(), dirty_.end());
    dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
    for (Id id : dirty_) {
        metrics.set_bindings(classes_[id - 1u], counts_[id - 1u]);
    }
    dirty_.clear();
}

} // namespace xpmip::control
