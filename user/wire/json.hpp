// JSON view of signaling messages: what `xpmip-mh decode` prints and what `xpmip-mh encode`
// reads. to_json(from_json(j)) round-trips for every message the codec can encode.
#pragma once

#include "wire/framing.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace xpmip::wire {

// Never throws for a decoded message, and its dump() is always valid UTF-8: an MN-ID or MAG
// Identifier is "identifier" (text) for an NAI (subtype 1) and "identifier_hex" otherwise.
nlohmann::json to_json(const MobilityMessage& message);
nlohmann::json to_json(const ReceivedPacket& packet);
// Throws std::invalid_argument naming the key and the bad value: a number that does not fit its
// field (e.g. "binding_id": 257, "flags_raw": 0x1ff in a PBA) is refused, never truncated.
// MN-ID / MAG Identifier take "identifier" (text) or "identifier_hex" (raw octets).
MobilityMessage message_from_json(const nlohmann::json& j);

// dump() that never throws: invalid UTF-8 (which to_json never produces) becomes U+FFFD.
std::string dump_json(const nlohmann::json& j, int indent = -1);

} // namespace xpmip::wire
