// The multipath part of an LMA or MAG configuration (RFC 8278): interface labels by name and the
// routing rules that steer the mobile nodes' flows onto paths by label. RFC 8278 §3.2: the
// policy is "statically configured on both the MAG and the LMA"; both read the same keys, so one
// block pasted into both files gives both ends the same per-flow decisions.
//
//   labels:                        # If-Label values (RFC 8278 §4.1, 1..255) and their weights
//     - {name: red, id: 1, weight: 3}
//     - {name: blue, id: 2}        # weight 1
//   steering:                      # first match wins; unmatched flows: any up path
//     - {name: web, proto: tcp, remote_ports: 80, labels: [red, blue]}
//     - {name: bulk, proto: udp, remote_ports: 5001-5009, distribute: per-packet, labels: [red, blue]}
#pragma once

#include "config/yaml_reader.hpp"
#include "dataplane/types.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::config {

struct Label {
    std::string name;
    std::uint8_t id = 0;
    std::uint8_t weight = 1;   // share of per-packet distribution on paths with this label
};

struct SteeringConfig {
    std::vector<Label> labels;
    std::vector<std::string> rule_names;     // rules[i]'s name, for logs
    dataplane::PolicyConfig policy;          // empty: no steering (first up path by flow hash)

    const Label* label_by_name(const std::string& name) const;
    const Label* label_by_id(std::uint8_t id) const;
    // Weight of paths with this label (1 when the label is not configured).
    std::uint8_t weight(std::uint8_t label_id) const;
    // "red" for a configured id, else the number.
    std::string label_name(std::uint8_t label_id) const;
};

// The policy id every multipath session uses in the data plane's policies map.
inline constexpr std::uint8_t kSteeringPolicyId = 1;

// Reads `labels` and `steering` of the root map (both optional). Errors name the rule and key.
SteeringConfig read_steering(MapReader& root);
// One line per rule for the agents' start-up log: "web: proto 6 remote ports 80-80 -> red, blue".
std::vector<std::string> describe_rules(const SteeringConfig& s);
// A label given by name (or by number 1..255) in key `key` of `r`.
std::uint8_t resolve_label(const SteeringConfig& s, MapReader& r, const std::string& key, const std::string& value);

} // namespace xpmip::config
