// One PBU's way through the LMA (RFC 5213 §5.3): the context every step of the registration reads
// and fills. LocalMobilityAnchor::process builds it from the PBU, then runs the steps in RFC order
// (lma.cpp); each step either goes on or names the status the PBA rejects with.
#pragma once

#include "lma/binding_cache.hpp"
#include "lma/lma_config.hpp"
#include "wire/messages.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lma {

struct IncomingPbu;

// The options registration reads (RFC 5213 §8.1, RFC 5844 §3.1, RFC 5845 §3, RFC 8278 §4), once.
struct PbuOptions {
    const wire::MobileNodeIdentifierOption* mn_id = nullptr;
    const wire::HandoffIndicatorOption* hi = nullptr;
    const wire::AccessTechnologyTypeOption* att = nullptr;
    const wire::TimestampOption* timestamp = nullptr;
    const wire::Ipv4HomeAddressRequestOption* ipv4_request = nullptr;
    const wire::GreKeyOption* gre = nullptr;
    const wire::MobileNodeLinkLayerIdOption* mn_link_layer = nullptr;
    const wire::LinkLocalAddressOption* link_local = nullptr;
    const wire::Ipv4CareOfAddressOption* ipv4_coa = nullptr;
    std::vector<wire::HomeNetworkPrefixOption> hnps;
    // RFC 8278 §4.4: options 63 and 64, or none when multipath is off here (a legacy LMA skips them).
    const wire::MagMultipathBindingOption* multipath = nullptr;
    const wire::MagIdentifierOption* mag_identifier = nullptr;

    static PbuOptions of(const wire::ProxyBindingUpdate& pbu, bool multipath_enabled);
};

// The addresses the MN gets (RFC 5213 §5.3.1 steps 7-8, RFC 5844 §3.2.2).
struct AddressRequest {
    bool serve6 = false;
    bool serve4 = false;
    bool ipv4_prohibited = false;   // IPv6 goes ahead, the IPv4 HoA Reply says no (RFC 5844 §3.3.2)
    std::vector<wire::HomeNetworkPrefixOption> requested;   // the prefixes the MAG named (not ::/0)
};

// RFC 5845 §5.2 and §7.3 on the LMA side.
struct GreDecision {
    wire::Status status = wire::Status::Accepted;   // 2 and 3 are successes too
    bool gre = false;              // GRE encapsulation
    bool keyed = false;            // with keys
    bool include_option = false;   // the PBA carries the GRE Key option
    bool tlv = false;              // UDP/TLV/GRE (T in the PBA)
};

struct Registration {
    const IncomingPbu& in;
    const wire::ProxyBindingUpdate& pbu;
    Clock::time_point now;
    bool replay;                    // a deferred PBU taken up again (already checked for freshness)
    PbuOptions opt;
    bool dereg = false;             // lifetime 0 (RFC 5213 §5.3.5)

    // Authorization (RFC 5213 §5.3.1).
    std::string id;                 // the Binding Cache key of the MN-ID
    const MagPeer* peer = nullptr;
    const MobileNodeProfile* profile = nullptr;
    MobileNodeProfile stored_profile;   // where `profile` points for a subscriber store's MN
    const Realm* realm = nullptr;
    EffectivePolicy policy;

    // What the Binding Cache holds for the MN, and for this Binding-Id (RFC 8278).
    BindingCacheEntry* entry = nullptr;
    MultipathBinding* binding = nullptr;
    bool handoff = false;           // RFC 5213 §5.4.1: another MAG (another MAG Identifier)
    std::optional<std::uint16_t> last_accepted_sequence;   // for 135 (RFC 6275 §6.1.8)

    AddressRequest addresses;
    bool udp_transport = false;     // IPv4/UDP 5436 (RFC 5844)
    bool force_udp = false;         // F accepted (RFC 5844 §3.1.3)
    GreDecision gre;

    // What commits: the entry as it will be, this PBU's binding, keys to release once it holds.
    BindingCacheEntry next;
    MultipathBinding next_binding;
    std::vector<std::uint32_t> dropped_keys;
    std::chrono::seconds granted{0};

    bool multipath() const { return opt.multipath != nullptr; }
    // The uplink key slot of this registration: the binding's with RFC 8278, else the entry's.
    std::optional<std::uint32_t>& uplink_key() { return multipath() ? next_binding.key_uplink : next.key_uplink; }
};

// A step's verdict: nothing (go on) or the status to reject with.
using Rejection = std::optional<wire::Status>;

} // namespace xpmip::lma
