// RFC 5846 at the MAG: a Binding Revocation Indication from its LMA (§9.1), checked rule by rule,
// the MNs it names torn down, and the Acknowledgement (§6.1.2).
#include "mag/mag.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace xpmip::mag {

namespace trigger = wire::revocation_trigger;
namespace status = wire::bra_status;

std::optional<wire::BindingRevocationAcknowledgement> MobileAccessGateway::on_bri(
    const IpAddress& src, const wire::BindingRevocationIndication& bri, Clock::time_point /*now*/) {
    if (!config_.is_lma_address(src)) {
        // §13: "It is NOT allowed for any mobility node to revoke a mobile node mobility session
        // that is not registered with this mobility node."
        spdlog::warn("BRI seq={} from {}: not our LMA, dropped", bri.sequence, to_string(src));
        return std::nullopt;
    }
    wire::BindingRevocationAcknowledgement bra;
    bra.sequence = bri.sequence;   // §6.1.2: copied, and P, V, G as they were
    bra.flags = bri.flags;
    bra.status = check_bri(bri);
    if (bra.status == status::kSuccess) {
        bra.status = bri.has(wire::br_flag::kGlobal) ? revoke_global(bri) : revoke_per_mn(bri);
    }
    spdlog::log(bra.accepted() ? spdlog::level::info : spdlog::level::warn,
                "BRI seq={} trigger={} ({}){} from {} -> BRA status={} ({})", bri.sequence, bri.trigger,
                wire::revocation_trigger_name(bri.trigger), bri.has(wire::br_flag::kGlobal) ? " G" : "",
                to_string(src), bra.status, wire::bra_status_name(bra.status));
    return bra;
}

// §9.1, §6.2.1: what this MAG can be asked at all.
std::uint8_t MobileAccessGateway::check_bri(const wire::BindingRevocationIndication& bri) const {
    if (!bri.has(wire::br_flag::kProxy)) {
        return status::kBindingDoesNotExist;   // a MAG holds proxy bindings only
    }
    if (!trigger::is_known(bri.trigger)) {
        return status::kRevocationTriggerNotSupported;   // §6.2.1: SHOULD 133
    }
    if (bri.has(wire::br_flag::kGlobal) != trigger::is_global(bri.trigger)) {
        // §6.2.1: a trigger "NOT allowed with the ... intent" (G with a per-MN trigger): 134. So
        // is a global trigger without G.
        return status::kRevocationFunctionNotSupported;
    }
    if (bri.has(wire::br_flag::kIpv4HoaOnly)) {
        // §9.1: the IPv4 binding alone, keeping the IPv6 one: not done here (README).
        return status::kRevocationFunctionNotSupported;
    }
    return status::kSuccess;
}

// §9.1: the MN its MN-ID names (and, with an HNP option, only if that is its prefix).
std::uint8_t MobileAccessGateway::revoke_per_mn(const wire::BindingRevocationIndication& bri) {
    const auto* id = bri.options.find<wire::MobileNodeIdentifierOption>();
    if (!id) {
        return status::kRevokedMobileNodesIdentityRequired;
    }
    auto it = bul_.find(id->identifier);
    if (it == bul_.end()) {
        return status::kBindingDoesNotExist;
    }
    for (const auto& hnp : bri.options.all<wire::HomeNetworkPrefixOption>()) {
        const auto& have = it->second.hnp;
        if (!have || have->address != hnp.prefix || have->length != hnp.prefix_length) {
            return status::kBindingDoesNotExist;   // §9.1: that binding is not this MN's
        }
    }
    const bool handover = bri.trigger == trigger::kInterMagHandoverSameAccessType ||
                          bri.trigger == trigger::kInterMagHandoverDifferentAccessType ||
                          bri.trigger == trigger::kInterMagHandoverUnknown;
    if (handover) {
        // §9.1: "if the mobile access gateway verified that the mobile node is still directly
        // attached, the mobile access gateway MUST reject the BRI" (132): we still serve it.
        return status::kRevocationFailedMnIsAttached;
    }
    tear_down(id->identifier, bri.trigger);
    return status::kSuccess;
}

// §9.1: Per-Peer Policy with no options: every MN registered with this LMA; Revoking Mobility
// Node Local Policy: the MNs of the NAI realm in its MN-ID ("@example.com").
std::uint8_t MobileAccessGateway::revoke_global(const wire::BindingRevocationIndication& bri) {
    std::vector<std::string> mns;
    if (bri.trigger == trigger::kPerPeerPolicy) {
        if (!bri.options.items.empty()) {
            return status::kRevocationFunctionNotSupported;   // §9.1: "no mobility options"
        }
        for (const auto& [id, e] : bul_) {
            mns.push_back(id);
        }
    } else {
        const auto* id = bri.options.find<wire::MobileNodeIdentifierOption>();
        const auto at = id ? id->identifier.rfind('@') : std::string::npos;
        if (at == std::string::npos) {
            return status::kRevokedMobileNodesIdentityRequired;
        }
        const std::string realm = id->identifier.substr(at);   // "@example.com": not "@foo.example.com"
        for (const auto& [mn, e] : bul_) {
            if (mn.size() >= realm.size() && mn.compare(mn.size() - realm.size(), realm.size(), realm) == 0 &&
                mn.find('@') == mn.size() - realm.size()) {
                mns.push_back(mn);
            }
        }
        if (mns.empty()) {
            return status::kRevokedMobileNodesIdentityRequired;   // §9.1: cannot identify them
        }
    }
    for (const auto& mn : mns) {
        tear_down(mn, bri.trigger);
    }
    return status::kSuccess;
}

// The MN's session, access-link state and entry go; no de-registration (the LMA revoked it).
void MobileAccessGateway::tear_down(const std::string& mn_id, std::uint8_t t) {
    auto it = bul_.find(mn_id);
    if (it == bul_.end()) {
        return;
    }
    for (auto* x : all_paths(it->second)) {
        uninstall(*x);
    }
    spdlog::info("mobile node {} revoked by the LMA ({}): detached", mn_id, wire::revocation_trigger_name(t));
    forget(it);
}

} // namespace xpmip::mag
