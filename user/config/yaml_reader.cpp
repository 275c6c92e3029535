#include "config/yaml_reader.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace xpmip::config {

MapReader::MapReader(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
        fail("", "must be a mapping of keys to values");
    }
}

std::string MapReader::where(const YAML::Node& n, const std::string& key) const {
    const auto mark = n ? n.Mark() : node_.Mark();
    std::string full = path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
    if (mark.line >= 0) {
        return fmt::format("{}:{}: {}", file_, mark.line + 1, full);
    }
    return fmt::format("{}: {}", file_, full);
}

void MapReader::fail(const std::string& key, const std::string& what) const {
    YAML::Node n = (!key.empty() && node_ && node_.IsMap() && at(key)) ? at(key) : node_;
    throw ConfigError(fmt::format("{}: {}", where(n, key), what));
}

// Lookups go through a const node: yaml-cpp's non-const operator[] inserts missing keys.
YAML::Node MapReader::at(const std::string& key) const {
    const YAML::Node& n = node_;
    return n[key];
}

bool MapReader::has(const std::string& key) const {
    return node_ && node_.IsMap() && at(key) && !at(key).IsNull();
}

std::optional<YAML::Node> MapReader::scalar(const std::string& key) {
    known_.insert(key);
    if (!has(key)) {
        return std::nullopt;   // (a default YAML::Node is a defined null, not "absent")
    }
    YAML::Node n = at(key);
    if (!n.IsScalar()) {
        fail(key, "must be a single value");
    }
    return n;
}

std::optional<std::string> MapReader::opt_str(const std::string& key) {
    auto n = scalar(key);
    if (!n) {
        return std::nullopt;
    }
    return n->Scalar();
}

std::string MapReader::str(const std::string& key) {
    auto v = opt_str(key);
    if (!v) {
        fail(key, "is required");
    }
    return *v;
}

std::optional<std::uint64_t> MapReader::opt_uint(const std::string& key, std::uint64_t min, std::uint64_t max) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    std::size_t used = 0;
    try {
        if (!s->empty() && (*s)[0] == '-') {
            throw std::invalid_argument("negative");
        }
        v = std::stoull(*s, &used, 0);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s->size()) {
        fail(key, fmt::format("'{}' is not a whole number", *s));
    }
    if (v < min || v > max) {
        fail(key, fmt::format("{} is out of range {}..{}", v, min, max));
    }
    return v;
}

std::uint64_t MapReader::uint(const std::string& key, std::uint64_t min, std::uint64_t max) {
    auto v = opt_uint(key, min, max);
    if (!v) {
        fail(key, "is required");
    }
    return *v;
}

std::optional<bool> MapReader::opt_bool(const std::string& key) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    if (*s == "true" || *s == "yes" || *s == "on") {
        return true;
    }
    if (*s == "false" || *s == "no" || *s == "off") {
        return false;
    }
    fail(key, fmt::format("'{}' is not true or false", *s));
}

std::optional<std::chrono::milliseconds> MapReader::opt_seconds(const std::string& key, double min, double max) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    double v = 0;
    std::size_t used = 0;
    try {
        v = std::stod(*s, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != s->size() || !std::isfinite(v)) {
        fail(key, fmt::format("'{}' is not a number of seconds", *s));
    }
    if (v < min || v > max) {
        fail(key, fmt::format("{} s is out of range {}..{} s", *s, min, max));
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(v * 1000.0)));
}

namespace {
template <class T>
std::optional<T> parse_with(MapReader& r, const std::string& key, const char* what) {
    auto s = r.opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    try {
        return T::parse(*s);
    } catch (const std::exception&) {
        r.fail(key, fmt::format("'{}' is not {}", *s, what));
    }
}
} // namespace

std::optional<IpAddress> MapReader::opt_ip(const std::string& key) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    try {
        return parse_ip_address(*s);
    } catch (const std::exception&) {
        fail(key, fmt::format("'{}' is not an IPv4 or IPv6 address", *s));
    }
}
std::optional<Ipv4Address> MapReader::opt_ipv4(const std::string& key) {
    return parse_with<Ipv4Address>(*this, key, "an IPv4 address");
}
std::optional<Ipv6Address> MapReader::opt_ipv6(const std::string& key) {
    return parse_with<Ipv6Address>(*this, key, "an IPv6 address");
}
std::optional<Ipv4Prefix> MapReader::opt_ipv4_prefix(const std::string& key) {
    auto p = parse_with<Ipv4Prefix>(*this, key, "an IPv4 prefix (a.b.c.d/len)");
    if (p && p->canonical() != *p) {
        fail(key, fmt::format("'{}' has host bits set (did you mean {}?)", p->to_string(), p->canonical().to_string()));
    }
    return p;
}
std::optional<Ipv6Prefix> MapReader::opt_ipv6_prefix(const std::string& key) {
    auto p = parse_with<Ipv6Prefix>(*this, key, "an IPv6 prefix (x::/len)");
    if (p && p->canonical() != *p) {
        fail(key, fmt::format("'{}' has host bits set (did you mean {}?)", p->to_string(), p->canonical().to_string()));
    }
    return p;
}
std::optional<MacAddress> MapReader::opt_mac(const std::string& key) {
    return parse_with<MacAddress>(*this, key, "a MAC address");
}

std::optional<std::string> MapReader::opt_endpoint(const std::string& key) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    auto colon = s->rfind(':');
    bool ok = colon != std::string::npos;
    if (ok) {
        std::string host = s->substr(0, colon), port = s->substr(colon + 1);
        ok = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos &&
             std::stoul(port) >= 1 && std::stoul(port) <= 65535;
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
            ok = ok && Ipv6Address::try_parse(host.substr(1, host.size() - 2)).has_value();
        } else if (!host.empty()) {
            ok = ok && Ipv4Address::try_parse(host).has_value();
        }
    }
    if (!ok) {
        fail(key, fmt::format("'{}' is not address:port (e.g. 127.0.0.1:9430, [::1]:9430, :9430)", *s));
    }
    return s;
}

std::optional<std::string> MapReader::opt_choice(const std::string& key, const std::vector<std::string>& choices) {
    auto s = opt_str(key);
    if (!s) {
        return std::nullopt;
    }
    for (const auto& c : choices) {
        if (*s == c) {
            return s;
        }
    }
    std::string list;
    for (const auto& c : choices) {
        list += (list.empty() ? "" : ", ") + c;
    }
    fail(key, fmt::format("'{}' is not one of: {}", *s, list));
}

std::vector<std::string> MapReader::str_list(const std::string& key) {
    known_.insert(key);
    std::vector<std::string> out;
    if (!has(key)) {
        return out;
    }
    YAML::Node n = at(key);
    if (n.IsScalar()) {
        out.push_back(n.Scalar());
        return out;
    }
    if (!n.IsSequence()) {
        fail(key, "must be a value or a list of values");
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
        if (!n[i].IsScalar()) {
            throw ConfigError(fmt::format("{}: must be a single value", where(n[i], fmt::format("{}[{}]", key, i))));
        }
        out.push_back(n[i].Scalar());
    }
    return out;
}

std::optional<MapReader> MapReader::opt_map(const std::string& key) {
    known_.insert(key);
    if (!has(key)) {
        return std::nullopt;
    }
    return MapReader(at(key), file_, path_.empty() ? key : path_ + "." + key);
}

std::vector<MapReader> MapReader::map_list(const std::string& key) {
    known_.insert(key);
    std::vector<MapReader> out;
    if (!has(key)) {
        return out;
    }
    YAML::Node n = at(key);
    if (!n.IsSequence()) {
        fail(key, "must be a list");
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
        std::string p = fmt::format("{}{}[{}]", path_.empty() ? "" : path_ + ".", key, i);
        if (!n[i].IsMap()) {
            throw ConfigError(fmt::format("{}: {}: must be a mapping of keys to values", file_ + ":" +
                                                                                                 std::to_string(n[i].Mark().line + 1),
                                          p));
        }
        out.emplace_back(n[i], file_, p);
    }
    return out;
}

void MapReader::finish() const {
    if (!node_ || !node_.IsMap()) {
        return;
    }
    for (auto it = node_.begin(); it != node_.end(); ++it) {
        const std::string key = it->first.Scalar();
        if (!known_.count(key)) {
            std::string list;
            for (const auto& k : known_) {
                list += (list.empty() ? "" : ", ") + k;
            }
            throw ConfigError(fmt::format("{}: unknown key (known here: {})", where(it->first, key), list));
        }
    }
}

MapReader load_string(const std::string& text, const std::string& name) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw ConfigError(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
    }
    if (!root || root.IsNull()) {
        throw ConfigError(fmt::format("{}: is empty", name));
    }
    return MapReader(root, name, "");
}

MapReader load_file(const std::string& file) {
    std::ifstream in(file);
    if (!in) {
        throw ConfigError(fmt::format("{}: cannot be read", file));
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return load_string(ss.str(), file);
}

} // namespace xpmip::config
