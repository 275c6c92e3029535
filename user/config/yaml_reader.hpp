// Strict reading of YAML configuration (yaml-cpp): every error names the file, the line and the
// key path ("lma.yaml:14: realms[1].ipv4_pool: '10.0.0/16' is not an IPv4 prefix"), and a key
// the reader did not consume is an error too (a typo must not be silently ignored).
#pragma once

#include "common/address.hpp"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace xpmip::config {

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A mapping node being read. Each get/opt marks its key as known; finish() rejects the rest.
class MapReader {
public:
    MapReader(YAML::Node node, std::string file, std::string path);

    const std::string& path() const { return path_; }
    bool has(const std::string& key) const;

    // Required and optional scalars, converted and checked; errors name the key.
    std::string str(const std::string& key);
    std::optional<std::string> opt_str(const std::string& key);
    std::uint64_t uint(const std::string& key, std::uint64_t min, std::uint64_t max);
    std::optional<std::uint64_t> opt_uint(const std::string& key, std::uint64_t min, std::uint64_t max);
    std::optional<bool> opt_bool(const std::string& key);
    // Seconds as a number ("1.5") into milliseconds.
    std::optional<std::chrono::milliseconds> opt_seconds(const std::string& key, double min, double max);
    std::optional<IpAddress> opt_ip(const std::string& key);
    std::optional<Ipv4Address> opt_ipv4(const std::string& key);
    std::optional<Ipv6Address> opt_ipv6(const std::string& key);
    std::optional<Ipv4Prefix> opt_ipv4_prefix(const std::string& key);
    std::optional<Ipv6Prefix> opt_ipv6_prefix(const std::string& key);
    std::optional<MacAddress> opt_mac(const std::string& key);
    // "address:port" / "[v6]:port" / ":port" (a listening endpoint).
    std::optional<std::string> opt_endpoint(const std::string& key);
    // One of `choices`, or nothing.
    std::optional<std::string> opt_choice(const std::string& key, const std::vector<std::string>& choices);
    // A list of scalars (a single scalar is a list of one).
    std::vector<std::string> str_list(const std::string& key);
    // A nested mapping (empty reader when absent) and a list of mappings.
    std::optional<MapReader> opt_map(const std::string& key);
    std::vector<MapReader> map_list(const std::string& key);

    // Unknown keys are errors: call when every key has been read.
    void finish() const;

    // An error about `key` (or the map itself when empty), at its line.
    [[noreturn]] void fail(const std::string& key, const std::string& what) const;

private:
    std::optional<YAML::Node> scalar(const std::string& key);
    YAML::Node at(const std::string& key) const;
    std::string where(const YAML::Node& n, const std::string& key) const;

    YAML::Node node_;
    std::string file_;
    std::string path_;
    std::set<std::string> known_;
};

// Load a file; a syntax error is a ConfigError naming the file and line.
MapReader load_file(const std::string& file);
MapReader load_string(const std::string& text, const std::string& name);

} // namespace xpmip::config
