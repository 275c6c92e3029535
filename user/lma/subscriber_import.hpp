// Profiles from text into the subscriber store: `xpmip subscribers import` (CSV with a header row,
// JSON Lines or a JSON array) and `add` (the same fields from the command line). Every record is
// checked as a `mobile_nodes:` entry is; one bad record and nothing is written, and the error names
// the record, its line and the field.
#pragma once

#include "lma/subscriber_store.hpp"

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace xpmip::lma {

// A record's fields as text, in the names of a `mobile_nodes:` entry (id, realm, ipv4, ipv6,
// ipv4_home_address, home_network_prefix, gre, tlv_header, udp_encapsulation, multipath).
using SubscriberFields = std::vector<std::pair<std::string, std::string>>;

// One record's fields into a profile, checked against `c` (SubscriberError names the field).
MobileNodeProfile parse_subscriber(const SubscriberFields& fields, const LmaConfig& c);

enum class SubscriberFormat { Csv, Json };
SubscriberFormat subscriber_format_of(const std::string& file);   // by extension: .csv, .json, .jsonl

struct ImportOptions {
    SubscriberFormat format = SubscriberFormat::Csv;
    bool replace = false;            // the file becomes the whole store (else: add or update)
    std::size_t max_errors = 20;     // reported before giving up
};

struct ImportResult {
    std::size_t records = 0;         // written (0 when errors is not empty)
    std::vector<std::string> errors; // "record 17 (line 18): realm: realm 9 is not defined in realms"
};

ImportResult import_subscribers(SubscriberStore& store, const LmaConfig& c, std::istream& in,
                                const ImportOptions& options);

// The fields of a profile as text (for `show` and export), same names as parse_subscriber takes.
SubscriberFields subscriber_fields(const MobileNodeProfile& m);

} // namespace xpmip::lma
