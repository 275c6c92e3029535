#include "config/steering_config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <set>

namespace xpmip::config {

const Label* SteeringConfig::label_by_name(const std::string& name) const {
    for (const auto& l : labels) {
        if (l.name == name) {
            return &l;
        }
    }
    return nullptr;
}

const Label* SteeringConfig::label_by_id(std::uint8_t id) const {
    for (const auto& l : labels) {
        if (l.id == id) {
            return &l;
        }
    }
    return nullptr;
}

std::uint8_t SteeringConfig::weight(std::uint8_t label_id) const {
    const Label* l = label_by_id(label_id);
    return l ? l->weight : 1;
}

std::string SteeringConfig::label_name(std::uint8_t label_id) const {
    const Label* l = label_by_id(label_id);
    return l ? l->name : std::to_string(label_id);
}

namespace {

std::optional<unsigned> parse_number(const std::string& s) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

// "80", "5000-5009": a port range; errors name the key.
std::pair<std::uint16_t, std::uint16_t> port_range(MapReader& r, const std::string& key, const std::string& text) {
    const auto dash = text.find('-');
    auto lo = parse_number(text.substr(0, dash));
    auto hi = dash == std::string::npos ? lo : parse_number(text.substr(dash + 1));
    if (!lo || !hi || *lo > 65535 || *hi > 65535 || *lo > *hi) {
        r.fail(key, fmt::format("'{}' is not a port or a port range LO-HI (0..65535)", text));
    }
    return {static_cast<std::uint16_t>(*lo), static_cast<std::uint16_t>(*hi)};
}

} // namespace

std::uint8_t resolve_label(const SteeringConfig& s, MapReader& r, const std::string& key, const std::string& value) {
    if (const Label* l = s.label_by_name(value)) {
        return l->id;
    }
    if (auto n = parse_number(value); n && *n >= 1 && *n <= 255) {
        return static_cast<std::uint8_t>(*n);
    }
    r.fail(key, fmt::format("'{}' is not a label of `labels` nor a number 1..255", value));
}

std::vector<std::string> describe_rules(const SteeringConfig& s) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < s.policy.rules.size(); ++i) {
        const auto& r = s.policy.rules[i];
        std::string what;
        if (r.proto) {
            what += fmt::format(" proto {}", r.proto);
        }
        if (r.dscp) {
            what += fmt::format(" dscp {}", *r.dscp);
        }
        if (r.remote_prefix) {
            what += " remote " + *r.remote_prefix;
        }
        if (r.remote_port_lo != 0 || r.remote_port_hi != 65535) {
            what += fmt::format(" remote ports {}-{}", r.remote_port_lo, r.remote_port_hi);
        }
        if (r.local_port_lo != 0 || r.local_port_hi != 65535) {
            what += fmt::format(" local ports {}-{}", r.local_port_lo, r.local_port_hi);
        }
        std::vector<std::string> labels;
        for (auto l : r.labels) {
            labels.push_back(s.label_name(l));
        }
        out.push_back(fmt::format("{}:{} -> {}{}{}", s.rule_names[i], what.empty() ? " any" : what,
                                  labels.empty() ? "any" : fmt::format("{}", fmt::join(labels, ", ")),
                                  r.per_packet ? " (per packet, by weight)" : "", r.strict ? " (strict)" : ""));
    }
    return out;
}

namespace {

// One entry of `labels`: names and ids unique across the list, a name never a number (so a
// rule's label names cannot be mistaken for ids).
Label read_label(MapReader& r, std::set<std::string>& names, std::set<unsigned>& ids) {
    Label l;
    l.name = r.str("name");
    if (l.name.empty() || parse_number(l.name)) {
        r.fail("name", fmt::format("'{}': a label's name must not be empty or a number", l.name));
    }
    l.id = static_cast<std::uint8_t>(r.uint("id", 1, 255));
    l.weight = static_cast<std::uint8_t>(r.opt_uint("weight", 1, 255).value_or(1));
    if (!names.insert(l.name).second) {
        r.fail("name", fmt::format("label '{}' is defined twice", l.name));
    }
    if (!ids.insert(l.id).second) {
        r.fail("id", fmt::format("label id {} is used twice", l.id));
    }
    r.finish();
    return l;
}

std::vector<Label> read_labels(MapReader& root) {
    std::vector<Label> labels;
    std::set<std::string> names;
    std::set<unsigned> ids;
    for (auto& r : root.map_list("labels")) {
        labels.push_back(read_label(r, names, ids));
    }
    return labels;
}

// `proto`: a name or an IP protocol number 1..255.
std::uint8_t read_protocol(MapReader& r, const std::string& proto) {
    if (proto == "tcp") {
        return 6;
    }
    if (proto == "udp") {
        return 17;
    }
    if (proto == "icmp") {
        return 1;
    }
    if (proto == "icmpv6") {
        return 58;
    }
    if (auto n = parse_number(proto); n && *n >= 1 && *n <= 255) {
        return static_cast<std::uint8_t>(*n);
    }
    r.fail("proto", fmt::format("'{}' is not tcp, udp, icmp, icmpv6 or a protocol number 1..255", proto));
}

// `remote_ports` / `local_ports`: only for TCP and UDP, whose headers carry ports.
void read_rule_ports(MapReader& r, dataplane::RuleConfig& rule) {
    if (auto p = r.opt_str("remote_ports")) {
        std::tie(rule.remote_port_lo, rule.remote_port_hi) = port_range(r, "remote_ports", *p);
    }
    if (auto p = r.opt_str("local_ports")) {
        std::tie(rule.local_port_lo, rule.local_port_hi) = port_range(r, "local_ports", *p);
    }
    if ((r.has("remote_ports") || r.has("local_ports")) && rule.proto != 6 && rule.proto != 17) {
        r.fail(r.has("remote_ports") ? "remote_ports" : "local_ports", "ports need proto tcp or udp");
    }
}

// `distribute`, `strict` and `labels`: how the rule's flows use the paths (RFC 8278 §3.2).
void read_rule_distribution(const SteeringConfig& s, MapReader& r, dataplane::RuleConfig& rule) {
    const auto mode = r.opt_choice("distribute", {"per-flow", "per-packet"}).value_or("per-flow");
    rule.per_packet = mode == "per-packet";
    rule.strict = r.opt_bool("strict").value_or(false);
    const auto labels = r.str_list("labels");
    if (labels.empty() && !rule.per_packet) {
        r.fail("labels", "a per-flow rule needs labels in order of preference");
    }
    if (labels.size() > XPMIP_MAX_LABEL_PREFS) {
        r.fail("labels", fmt::format("{} labels: at most {}", labels.size(), XPMIP_MAX_LABEL_PREFS));
    }
    for (const auto& l : labels) {
        rule.labels.push_back(resolve_label(s, r, "labels", l));
    }
}

// One entry of `steering`, checked as the data plane will take it.
dataplane::RuleConfig read_rule(const SteeringConfig& s, MapReader& r) {
    dataplane::RuleConfig rule;
    if (auto proto = r.opt_str("proto")) {
        rule.proto = read_protocol(r, *proto);
    }
    if (auto d = r.opt_uint("dscp", 0, 63)) {
        rule.dscp = static_cast<std::uint8_t>(*d);
    }
    rule.remote_prefix = r.opt_str("remote_prefix");
    read_rule_ports(r, rule);
    read_rule_distribution(s, r, rule);
    r.finish();
    // What the data plane would refuse is a configuration error here, not at the first
    // session.
    try {
        (void)dataplane::to_map_value(dataplane::PolicyConfig{{rule}});
    } catch (const std::exception& e) {
        r.fail(rule.remote_prefix ? "remote_prefix" : "", e.what());
    }
    return rule;
}

} // namespace

SteeringConfig read_steering(MapReader& root) {
    SteeringConfig s;
    s.labels = read_labels(root);
    auto rules = root.map_list("steering");
    if (rules.size() > XPMIP_MAX_RULES) {
        root.fail("steering", fmt::format("{} rules: the data plane takes at most {}", rules.size(), XPMIP_MAX_RULES));
    }
    for (auto& r : rules) {
        std::string name = r.opt_str("name").value_or(fmt::format("rule{}", s.policy.rules.size() + 1));
        dataplane::RuleConfig rule = read_rule(s, r);
        s.rule_names.push_back(name);
        s.policy.rules.push_back(rule);
    }
    return s;
}

} // namespace xpmip::config
