#include "lma/subscriber_import.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <istream>
#include <set>

namespace xpmip::lma {

namespace {

const std::vector<std::string> kFields = {"id", "realm", "ipv4", "ipv6", "ipv4_home_address", "home_network_prefix",
                                          "gre", "tlv_header", "udp_encapsulation", "multipath"};

bool parse_bool(const std::string& field, const std::string& text) {
    if (text == "true" || text == "yes" || text == "on" || text == "1") {
        return true;
    }
    if (text == "false" || text == "no" || text == "off" || text == "0") {
        return false;
    }
    throw SubscriberError(field, fmt::format("'{}' is not true or false", text));
}

std::uint32_t parse_realm(const std::string& text) {
    std::uint32_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v == 0) {
        throw SubscriberError("realm", fmt::format("'{}' is not a realm id (1-4294967295)", text));
    }
    return v;
}

template <typename T>
T parse_address(const std::string& field, const std::string& text, const char* what) {
    try {
        return T::parse(text);
    } catch (const std::exception&) {
        throw SubscriberError(field, fmt::format("'{}' is not {}", text, what));
    }
}

void apply_field(MobileNodeProfile& m, const std::string& field, const std::string& text) {
    if (field == "id") {
        m.id = text;
    } else if (field == "realm") {
        m.realm = parse_realm(text);
    } else if (field == "ipv4") {
        m.ipv4 = parse_bool(field, text);
    } else if (field == "ipv6") {
        m.ipv6 = parse_bool(field, text);
    } else if (field == "ipv4_home_address") {
        m.ipv4_home_address = parse_address<Ipv4Address>(field, text, "an IPv4 address");
    } else if (field == "home_network_prefix") {
        m.home_network_prefix = parse_address<Ipv6Prefix>(field, text, "an IPv6 prefix (2001:db8:1::/64)");
    } else if (field == "gre") {
        try {
            m.policy.gre = parse_gre_policy(text);
        } catch (const std::invalid_argument& ex) {
            throw SubscriberError(field, ex.what());
        }
    } else if (field == "tlv_header") {
        m.policy.tlv_header = parse_bool(field, text);
    } else if (field == "udp_encapsulation") {
        m.policy.udp = parse_bool(field, text);
    } else if (field == "multipath") {
        m.multipath = parse_bool(field, text);
    } else {
        throw SubscriberError(field, fmt::format("is not a subscriber field (one of {})", fmt::join(kFields, ", ")));
    }
}

// A CSV line into fields (RFC 4180: commas, double quotes around a field, "" inside one).
std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char ch = line[i];
        if (quoted) {
            if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                out.back() += '"';
                ++i;
            } else if (ch == '"') {
                quoted = false;
            } else {
                out.back() += ch;
            }
        } else if (ch == '"') {
            quoted = true;
        } else if (ch == ',') {
            out.emplace_back();
        } else if (ch != '\r') {
            out.back() += ch;
        }
    }
    if (quoted) {
        throw SubscriberError("", "a quoted field does not end on its line");
    }
    return out;
}

std::string json_text(const std::string& field, const nlohmann::json& v) {
    if (v.is_string()) {
        return v.get<std::string>();
    }
    if (v.is_boolean()) {
        return v.get<bool>() ? "true" : "false";
    }
    if (v.is_number_unsigned()) {
        return std::to_string(v.get<std::uint64_t>());
    }
    throw SubscriberError(field, fmt::format("{} is not a string, a boolean or an unsigned number", v.dump()));
}

SubscriberFields json_fields(const nlohmann::json& record) {
    if (!record.is_object()) {
        throw SubscriberError("", fmt::format("is not a JSON object but {}", record.type_name()));
    }
    SubscriberFields fields;
    for (const auto& [k, v] : record.items()) {
        if (!v.is_null()) {
            fields.emplace_back(k, json_text(k, v));
        }
    }
    return fields;
}

// A record read from the file, and where it was.
struct Record {
    MobileNodeProfile profile;
    std::size_t number = 0, line = 0;
};

std::string where(std::size_t number, std::size_t line) {
    return fmt::format("record {} (line {})", number, line);
}

// The file's records, each parsed and checked; errors collected, not thrown.
class RecordReader {
public:
    RecordReader(const LmaConfig& c, const ImportOptions& o, ImportResult& r) : config_(c), options_(o), result_(r) {}

    void add(const SubscriberFields& fields, std::size_t line) {
        ++number_;
        try {
            records_.push_back(Record{parse_subscriber(fields, config_), number_, line});
        } catch (const SubscriberError& ex) {
            error(where(number_, line) + ": " + ex.what());
        }
    }
    void error(std::string message) {
        if (result_.errors.size() < options_.max_errors) {
            result_.errors.push_back(std::move(message));
        } else if (result_.errors.size() == options_.max_errors) {
            result_.errors.push_back("... more errors not shown");
        }
    }
    bool full() const { return result_.errors.size() > options_.max_errors; }
    std::vector<Record>& records() { return records_; }

private:
    const LmaConfig& config_;
    const ImportOptions& options_;
    ImportResult& result_;
    std::vector<Record> records_;
    std::size_t number_ = 0;
};

void read_csv(std::istream& in, RecordReader& reader) {
    std::string line;
    std::vector<std::string> header;
    for (std::size_t n = 1; std::getline(in, line) && !reader.full(); ++n) {
        if (line.empty() || line == "\r" || line[0] == '#') {
            continue;
        }
        try {
            auto cells = split_csv(line);
            if (header.empty()) {
                header = cells;
                if (std::find(header.begin(), header.end(), "id") == header.end()) {
                    throw SubscriberError("id", "the header row (the first line) has no id column");
                }
                continue;
            }
            if (cells.size() != header.size()) {
                throw SubscriberError("", fmt::format("has {} fields, the header {}", cells.size(), header.size()));
            }
            SubscriberFields fields;
            for (std::size_t i = 0; i < cells.size(); ++i) {
                if (!cells[i].empty()) {
                    fields.emplace_back(header[i], cells[i]);
                }
            }
            reader.add(fields, n);
        } catch (const SubscriberError& ex) {
            reader.error(fmt::format("line {}: {}", n, ex.what()));
        }
    }
}

void read_json(std::istream& in, RecordReader& reader) {
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos) {
            continue;
        }
        if (line[first] == '[') {
            // A JSON array: the whole file is one document.
            std::string rest = line + '\n' + std::string(std::istreambuf_iterator<char>(in), {});
            nlohmann::json doc;
            try {
                doc = nlohmann::json::parse(rest);
            } catch (const nlohmann::json::parse_error& ex) {
                reader.error(fmt::format("line {}: not JSON: {}", n, ex.what()));
                return;
            }
            for (const auto& r : doc) {
                try {
                    reader.add(json_fields(r), n);
                } catch (const SubscriberError& ex) {
                    reader.error(fmt::format("record in the array at line {}: {}", n, ex.what()));
                }
            }
            return;
        }
        try {
            reader.add(json_fields(nlohmann::json::parse(line)), n);
        } catch (const nlohmann::json::parse_error& ex) {
            reader.error(fmt::format("line {}: not a JSON object: {}", n, ex.what()));
        } catch (const SubscriberError& ex) {
            reader.error(fmt::format("line {}: {}", n, ex.what()));
        }
        if (reader.full()) {
            return;
        }
    }
}

// The configuration's own static addresses: a stored profile may not take one.
void check_against_config(const std::vector<Record>& records, const LmaConfig& c, RecordReader& reader) {
    std::set<std::pair<std::uint32_t, Ipv4Address>> v4;
    std::set<std::pair<std::uint32_t, Ipv6Prefix>> v6;
    for (const auto& m : c.mobile_nodes) {
        if (m.ipv4_home_address) {
            v4.emplace(m.realm, *m.ipv4_home_address);
        }
        if (m.home_network_prefix) {
            v6.emplace(m.realm, *m.home_network_prefix);
        }
    }
    for (const auto& r : records) {
        const auto& m = r.profile;
        if (m.ipv4_home_address && v4.count({m.realm, *m.ipv4_home_address})) {
            reader.error(fmt::format("{}: ipv4_home_address: {} belongs to a mobile_nodes entry of the configuration",
                                     where(r.number, r.line), m.ipv4_home_address->to_string()));
        }
        if (m.home_network_prefix && v6.count({m.realm, *m.home_network_prefix})) {
            reader.error(fmt::format("{}: home_network_prefix: {} belongs to a mobile_nodes entry of the configuration",
                                     where(r.number, r.line), m.home_network_prefix->to_string()));
        }
    }
}

} // namespace

MobileNodeProfile parse_subscriber(const SubscriberFields& fields, const LmaConfig& c) {
    MobileNodeProfile m;
    std::set<std::string> seen;
    for (const auto& [field, text] : fields) {
        if (!seen.insert(field).second) {
            throw SubscriberError(field, "is given twice");
        }
        apply_field(m, field, text);
    }
    if (!seen.count("realm")) {
        throw SubscriberError("realm", "is required");
    }
    check_subscriber(m, c);
    return m;
}

SubscriberFormat subscriber_format_of(const std::string& file) {
    auto ends_with = [&](const std::string& ext) {
        return file.size() >= ext.size() && file.compare(file.size() - ext.size(), ext.size(), ext) == 0;
    };
    if (ends_with(".csv")) {
        return SubscriberFormat::Csv;
    }
    if (ends_with(".json") || ends_with(".jsonl")) {
        return SubscriberFormat::Json;
    }
    throw std::invalid_argument(fmt::format("{}: cannot tell its format from its name (.csv, .json, .jsonl): "
                                            "give --format", file));
}

ImportResult import_subscribers(SubscriberStore& store, const LmaConfig& c, std::istream& in,
                                const ImportOptions& options) {
    ImportResult result;
    RecordReader reader(c, options, result);
    options.format == SubscriberFormat::Csv ? read_csv(in, reader) : read_json(in, reader);
    auto& records = reader.records();
    // In MN-ID order: duplicates side by side, and LMDB writes its pages in order.
    std::stable_sort(records.begin(), records.end(),
                     [](const Record& a, const Record& b) { return a.profile.id < b.profile.id; });
    for (std::size_t i = 1; i < records.size(); ++i) {
        if (records[i].profile.id == records[i - 1].profile.id) {
            reader.error(fmt::format("{}: id: '{}' is also {}", where(records[i].number, records[i].line),
                                     records[i].profile.id, where(records[i - 1].number, records[i - 1].line)));
        }
    }
    check_against_config(records, c, reader);
    if (!result.errors.empty()) {
        return result;
    }
    SubscriberStore::Writer w(store);
    if (options.replace) {
        w.clear();
    }
    const bool append = options.replace || store.size() == 0;
    for (const auto& r : records) {
        try {
            w.put(r.profile, append);
        } catch (const SubscriberError& ex) {
            reader.error(where(r.number, r.line) + ": " + ex.what());
            if (reader.full()) {
                break;
            }
        }
    }
    if (!result.errors.empty()) {
        return result;   // the writer aborts: nothing written
    }
    w.commit();
    result.records = records.size();
    return result;
}

SubscriberFields subscriber_fields(const MobileNodeProfile& m) {
    SubscriberFields f{{"id", m.id}, {"realm", std::to_string(m.realm)}, {"ipv4", m.ipv4 ? "true" : "false"},
                       {"ipv6", m.ipv6 ? "true" : "false"}};
    if (m.ipv4_home_address) {
        f.emplace_back("ipv4_home_address", m.ipv4_home_address->to_string());
    }
    if (m.home_network_prefix) {
        f.emplace_back("home_network_prefix", m.home_network_prefix->to_string());
    }
    if (m.policy.gre) {
        f.emplace_back("gre", to_string(*m.policy.gre));
    }
    if (m.policy.tlv_header) {
        f.emplace_back("tlv_header", *m.policy.tlv_header ? "true" : "false");
    }
    if (m.policy.udp) {
        f.emplace_back("udp_encapsulation", *m.policy.udp ? "true" : "false");
    }
    f.emplace_back("multipath", m.multipath ? "true" : "false");
    return f;
}

} // namespace xpmip::lma
