#include "wire/numbers.hpp"

namespace xpmip::wire {

std::string_view status_name(std::uint8_t status) {
    switch (static_cast<Status>(status)) {
    case Status::Accepted: return "ACCEPTED";
    case Status::GreKeyOptionNotRequired: return "GRE_KEY_OPTION_NOT_REQUIRED";
    case Status::GreTunnelingButTlvHeaderNotSupported: return "GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED";
    case Status::ReasonUnspecified: return "REASON_UNSPECIFIED";
    case Status::AdministrativelyProhibited: return "ADMINISTRATIVELY_PROHIBITED";
    case Status::InsufficientResources: return "INSUFFICIENT_RESOURCES";
    case Status::SequenceNumberOutOfWindow: return "SEQUENCE_NUMBER_OUT_OF_WINDOW";
    case Status::ProxyRegNotEnabled: return "PROXY_REG_NOT_ENABLED";
    case Status::NotLmaForThisMobileNode: return "NOT_LMA_FOR_THIS_MOBILE_NODE";
    case Status::MagNotAuthorizedForProxyReg: return "MAG_NOT_AUTHORIZED_FOR_PROXY_REG";
    case Status::NotAuthorizedForHomeNetworkPrefix: return "NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX";
    case Status::TimestampMismatch: return "TIMESTAMP_MISMATCH";
    case Status::TimestampLowerThanPrevAccepted: return "TIMESTAMP_LOWER_THAN_PREV_ACCEPTED";
    case Status::MissingHomeNetworkPrefixOption: return "MISSING_HOME_NETWORK_PREFIX_OPTION";
    case Status::BcePbuPrefixSetDoNotMatch: return "BCE_PBU_PREFIX_SET_DO_NOT_MATCH";
    case Status::MissingMnIdentifierOption: return "MISSING_MN_IDENTIFIER_OPTION";
    case Status::MissingHandoffIndicatorOption: return "MISSING_HANDOFF_INDICATOR_OPTION";
    case Status::MissingAccessTechTypeOption: return "MISSING_ACCESS_TECH_TYPE_OPTION";
    case Status::GreKeyOptionRequired: return "GRE_KEY_OPTION_REQUIRED";
    case Status::NotAuthorizedForIpv4MobilityService: return "NOT_AUTHORIZED_FOR_IPV4_MOBILITY_SERVICE";
    case Status::NotAuthorizedForIpv4HomeAddress: return "NOT_AUTHORIZED_FOR_IPV4_HOME_ADDRESS";
    case Status::NotAuthorizedForIpv6MobilityService: return "NOT_AUTHORIZED_FOR_IPV6_MOBILITY_SERVICE";
    case Status::MultipleIpv4HomeAddressAssignmentNotSupported:
        return "MULTIPLE_IPV4_HOME_ADDRESS_ASSIGNMENT_NOT_SUPPORTED";
    case Status::InvalidMobileNodeGroupIdentifier: return "INVALID_MOBILE_NODE_GROUP_IDENTIFIER";
    case Status::CannotSupportMultipathBinding: return "CANNOT_SUPPORT_MULTIPATH_BINDING";
    }
    return is_success(status) ? "UNKNOWN_SUCCESS" : "UNKNOWN_REJECTION";
}

std::string_view option_name(std::uint8_t type) {
    switch (static_cast<OptionType>(type)) {
    case OptionType::Pad1: return "Pad1";
    case OptionType::PadN: return "PadN";
    case OptionType::MobileNodeIdentifier: return "Mobile Node Identifier";
    case OptionType::HomeNetworkPrefix: return "Home Network Prefix";
    case OptionType::HandoffIndicator: return "Handoff Indicator";
    case OptionType::AccessTechnologyType: return "Access Technology Type";
    case OptionType::MobileNodeLinkLayerId: return "Mobile Node Link-layer Identifier";
    case OptionType::LinkLocalAddress: return "Link-local Address";
    case OptionType::Timestamp: return "Timestamp";
    case OptionType::RestartCounter: return "Restart Counter";
    case OptionType::NatDetection: return "NAT Detection";
    case OptionType::Ipv4CareOfAddress: return "IPv4 Care-of Address";
    case OptionType::GreKey: return "GRE Key";
    case OptionType::BindingIdentifier: return "Binding Identifier";
    case OptionType::Ipv4HomeAddressRequest: return "IPv4 Home Address Request";
    case OptionType::Ipv4HomeAddressReply: return "IPv4 Home Address Reply";
    case OptionType::Ipv4DefaultRouterAddress: return "IPv4 Default-Router Address";
    case OptionType::Ipv4DhcpSupportMode: return "IPv4 DHCP Support Mode";
    case OptionType::MobileNodeGroupIdentifier: return "Mobile Node Group Identifier";
    case OptionType::MagMultipathBinding: return "MAG Multipath-Binding";
    case OptionType::MagIdentifier: return "MAG Identifier";
    }
    return "Unknown option";
}

std::string_view revocation_trigger_name(std::uint8_t trigger) {
    namespace t = revocation_trigger;
    switch (trigger) {
    case t::kUnspecified: return "Unspecified";
    case t::kAdministrativeReason: return "Administrative Reason";
    case t::kInterMagHandoverSameAccessType: return "Inter-MAG Handover - same Access Type";
    case t::kInterMagHandoverDifferentAccessType: return "Inter-MAG Handover - different Access Type";
    case t::kInterMagHandoverUnknown: return "Inter-MAG Handover - Unknown";
    case t::kUserInitiatedSessionTermination: return "User-Initiated Session(s) Termination";
    case t::kAccessNetworkSessionTermination: return "Access Network Session(s) Termination";
    case t::kPossibleOutOfSyncBceState: return "Possible Out-of-Sync BCE State";
    case t::kPerPeerPolicy: return "Per-Peer Policy";
    case t::kRevokingMobilityNodeLocalPolicy: return "Revoking Mobility Node Local Policy";
    default: return trigger >= 250 ? "Reserved For Testing Purposes" : "Unassigned";
    }
}

std::string_view bra_status_name(std::uint8_t status) {
    namespace s = bra_status;
    switch (status) {
    case s::kSuccess: return "success";
    case s::kPartialSuccess: return "partial success";
    case s::kBindingDoesNotExist: return "Binding Does NOT Exist";
    case s::kIpv4HomeAddressOptionRequired: return "IPv4 Home Address Option Required";
    case s::kGlobalRevocationNotAuthorized: return "Global Revocation NOT Authorized";
    case s::kRevokedMobileNodesIdentityRequired: return "Revoked Mobile Nodes Identity Required";
    case s::kRevocationFailedMnIsAttached: return "Revocation Failed - MN is Attached";
    case s::kRevocationTriggerNotSupported: return "Revocation Trigger NOT Supported";
    case s::kRevocationFunctionNotSupported: return "Revocation Function NOT Supported";
    case s::kProxyBindingRevocationNotSupported: return "Proxy Binding Revocation NOT Supported";
    default: return status < 128 ? "unknown success" : "unknown rejection";
    }
}

} // namespace xpmip::wire
