// JSON view of signaling messages: what `xpmip-mh decode` prints and what `xpmip-mh encode`
// reads. to_json(from_json(j)) round-trips for every message the codec can encode.
#pragma once

#include "wire/framing.hpp"

#include <nlohmann/json.hpp>

namespace xpmip::wire {

nlohmann::json to_json(const MobilityMessage& message);
nlohmann::json to_json(const ReceivedPacket& packet);
// Throws std::invalid_argument naming the key and the bad value.
MobilityMessage message_from_json(const nlohmann::json& j);

} // namespace xpmip::wire
