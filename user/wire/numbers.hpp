// Protocol numbers of the Mobility Header and its options. Every value here is IANA's ("Mobile
// IPv6 parameters", https://www.iana.org/assignments/mobility-parameters: MH types, mobility
// options, status codes, handoff indicators, access technology types) as RFC 6275, 5213, 5844,
// 5845 and 8278 assign them; none is invented.
#pragma once

#include <cstdint>
#include <string_view>

namespace xpmip::wire {

// RFC 6275 §6.1.1
inline constexpr std::uint8_t kIpProtoMobilityHeader = 135;
inline constexpr std::uint8_t kMhPayloadProtoNone = 59;  // IPPROTO_NONE: nothing follows the MH
inline constexpr std::uint8_t kMhTypeBindingUpdate = 5;
inline constexpr std::uint8_t kMhTypeBindingAck = 6;
inline constexpr std::uint8_t kMhTypeBindingError = 7;   // RFC 6275 §6.1.9 (Wireshark's MIP6_BE)
inline constexpr std::uint8_t kMhTypeHeartbeat = 13;   // RFC 5847 §6.1 (IANA; Wireshark's MIP6_HB)
inline constexpr std::uint8_t kMhTypeBindingRevocation = 16;   // RFC 5846 §5 (Wireshark's MIP6_BR)
// RFC 5844 §3: the control plane over IPv4 is UDP to this port.
inline constexpr std::uint16_t kUdpPortPmipControl = 5436;

// Binding Update flags (16-bit field at MH octets 8-9).
namespace bu_flag {
inline constexpr std::uint16_t kAck = 0x8000;              // A (RFC 6275)
inline constexpr std::uint16_t kHomeRegistration = 0x4000; // H
inline constexpr std::uint16_t kLinkLocalCompat = 0x2000;  // L
inline constexpr std::uint16_t kKeyManagement = 0x1000;    // K
inline constexpr std::uint16_t kMapRegistration = 0x0800;  // M
inline constexpr std::uint16_t kMobileRouter = 0x0400;     // R (RFC 3963)
inline constexpr std::uint16_t kProxy = 0x0200;            // P (RFC 5213 §8.1)
inline constexpr std::uint16_t kForceUdp = 0x0100;         // F (RFC 5844 §3.1)
inline constexpr std::uint16_t kTlvHeader = 0x0080;        // T (RFC 5845 §6.2)
inline constexpr std::uint16_t kBulk = 0x0040;             // B (RFC 6602)
} // namespace bu_flag

// Binding Acknowledgement flags (8-bit field at MH octet 7).
namespace ba_flag {
inline constexpr std::uint8_t kKeyManagement = 0x80;       // K
inline constexpr std::uint8_t kMobileRouter = 0x40;        // R
inline constexpr std::uint8_t kProxy = 0x20;               // P (RFC 5213 §8.2)
inline constexpr std::uint8_t kTlvHeader = 0x10;           // T (RFC 5845 §6.3)
inline constexpr std::uint8_t kBulk = 0x08;                // B (RFC 6602)
} // namespace ba_flag

// RFC 5846 §5: the Binding Revocation Type at MH octet 6, and the P, V, G flags of the 16-bit
// field at octets 10-11 of both messages (§5.1 Figure 5, §5.2 Figure 6; tshark's mip6.bri_ip,
// mip6.bri_iv, mip6.bri_ig masks agree).
namespace br_type {
inline constexpr std::uint8_t kIndication = 1;
inline constexpr std::uint8_t kAcknowledgement = 2;
}
namespace br_flag {
inline constexpr std::uint16_t kProxy = 0x8000;         // P: a PMIPv6 binding
inline constexpr std::uint16_t kIpv4HoaOnly = 0x4000;   // V: the IPv4 home address binding only
inline constexpr std::uint16_t kGlobal = 0x2000;        // G: all bindings of the peer (or a group)
}

// RFC 5846 §5.1 / IANA: Revocation Trigger values. Below 128 per MN, 128-249 global (G set),
// 250-255 for testing.
namespace revocation_trigger {
inline constexpr std::uint8_t kUnspecified = 0;
inline constexpr std::uint8_t kAdministrativeReason = 1;
inline constexpr std::uint8_t kInterMagHandoverSameAccessType = 2;
inline constexpr std::uint8_t kInterMagHandoverDifferentAccessType = 3;
inline constexpr std::uint8_t kInterMagHandoverUnknown = 4;
inline constexpr std::uint8_t kUserInitiatedSessionTermination = 5;
inline constexpr std::uint8_t kAccessNetworkSessionTermination = 6;
inline constexpr std::uint8_t kPossibleOutOfSyncBceState = 7;
inline constexpr std::uint8_t kPerPeerPolicy = 128;                  // global
inline constexpr std::uint8_t kRevokingMobilityNodeLocalPolicy = 129;   // global
constexpr bool is_global(std::uint8_t t) { return t >= 128 && t < 250; }
constexpr bool is_known(std::uint8_t t) { return t <= 7 || t == 128 || t == 129 || t >= 250; }
} // namespace revocation_trigger
std::string_view revocation_trigger_name(std::uint8_t trigger);

// RFC 5846 §5.2 / IANA: Binding Revocation Acknowledgement Status; below 128 success.
namespace bra_status {
inline constexpr std::uint8_t kSuccess = 0;
inline constexpr std::uint8_t kPartialSuccess = 1;
inline constexpr std::uint8_t kBindingDoesNotExist = 128;
inline constexpr std::uint8_t kIpv4HomeAddressOptionRequired = 129;
inline constexpr std::uint8_t kGlobalRevocationNotAuthorized = 130;
inline constexpr std::uint8_t kRevokedMobileNodesIdentityRequired = 131;
inline constexpr std::uint8_t kRevocationFailedMnIsAttached = 132;
inline constexpr std::uint8_t kRevocationTriggerNotSupported = 133;
inline constexpr std::uint8_t kRevocationFunctionNotSupported = 134;
inline constexpr std::uint8_t kProxyBindingRevocationNotSupported = 135;
} // namespace bra_status
std::string_view bra_status_name(std::uint8_t status);

// Mobility option types.
enum class OptionType : std::uint8_t {
    Pad1 = 0,
    PadN = 1,
    MobileNodeIdentifier = 8,       // RFC 4283
    HomeNetworkPrefix = 22,         // RFC 5213 §8.3
    HandoffIndicator = 23,          // RFC 5213 §8.4
    AccessTechnologyType = 24,      // RFC 5213 §8.5
    MobileNodeLinkLayerId = 25,     // RFC 5213 §8.6
    LinkLocalAddress = 26,          // RFC 5213 §8.7
    Timestamp = 27,                 // RFC 5213 §8.8
    RestartCounter = 28,            // RFC 5847 §6.2
    NatDetection = 31,              // RFC 5555 §4.2.2
    Ipv4CareOfAddress = 32,         // RFC 5555 §3.1.1
    GreKey = 33,                    // RFC 5845 §6.1
    BindingIdentifier = 35,         // RFC 5648 §6.1
    Ipv4HomeAddressRequest = 36,    // RFC 5844 §3.3.1
    Ipv4HomeAddressReply = 37,      // RFC 5844 §3.3.2
    Ipv4DefaultRouterAddress = 38,  // RFC 5844 §3.3.3
    Ipv4DhcpSupportMode = 39,       // RFC 5844 §3.3.4
    MobileNodeGroupIdentifier = 50,   // RFC 6602 §4.3 (Wireshark's MIP6_MNG)
    MagMultipathBinding = 63,       // RFC 8278 §4.1
    MagIdentifier = 64,             // RFC 8278 §4.2
};

// RFC 6602 §4.3: the Mobile Node Group Identifier's Sub-type 1, the Bulk Binding Update Group,
// and its group 1, ALL-SESSIONS (every session between one LMA and one MAG).
inline constexpr std::uint8_t kMngSubtypeBulkBindingUpdateGroup = 1;
inline constexpr std::uint32_t kMngAllSessions = 1;

// Mobile Node Identifier subtypes (RFC 4283, RFC 7330). 0 is reserved (RFC 7330, IANA registry).
inline constexpr std::uint8_t kMnIdSubtypeReserved = 0;
inline constexpr std::uint8_t kMnIdSubtypeNai = 1;

// Handoff Indicator values (RFC 5213 §8.4).
enum class HandoffIndicator : std::uint8_t {
    Reserved = 0,
    NewInterface = 1,
    BetweenInterfaces = 2,
    BetweenMags = 3,
    Unknown = 4,
    Unchanged = 5,
};

// Binding Acknowledgement status codes (RFC 6275, 5213, 5844, 5845, 8278).
enum class Status : std::uint8_t {
    Accepted = 0,
    GreKeyOptionNotRequired = 2,                 // RFC 5845 §6.4
    GreTunnelingButTlvHeaderNotSupported = 3,    // RFC 5845 §6.4
    ReasonUnspecified = 128,
    AdministrativelyProhibited = 129,
    InsufficientResources = 130,
    SequenceNumberOutOfWindow = 135,
    ProxyRegNotEnabled = 152,
    NotLmaForThisMobileNode = 153,
    MagNotAuthorizedForProxyReg = 154,
    NotAuthorizedForHomeNetworkPrefix = 155,
    TimestampMismatch = 156,
    TimestampLowerThanPrevAccepted = 157,
    MissingHomeNetworkPrefixOption = 158,
    BcePbuPrefixSetDoNotMatch = 159,
    MissingMnIdentifierOption = 160,
    MissingHandoffIndicatorOption = 161,
    MissingAccessTechTypeOption = 162,
    GreKeyOptionRequired = 163,                  // RFC 5845 §6.4
    NotAuthorizedForIpv4MobilityService = 170,
    NotAuthorizedForIpv4HomeAddress = 171,
    NotAuthorizedForIpv6MobilityService = 172,
    MultipleIpv4HomeAddressAssignmentNotSupported = 173,
    InvalidMobileNodeGroupIdentifier = 175,      // RFC 6602 §4.4
    CannotSupportMultipathBinding = 180,         // RFC 8278 §4.3
};

// Status values below 128 mean the binding was accepted (RFC 6275 §6.1.8).
constexpr bool is_success(std::uint8_t status) { return status < 128; }
constexpr bool is_success(Status s) { return is_success(static_cast<std::uint8_t>(s)); }

// "GRE_KEY_OPTION_REQUIRED (163)" style names for logs; unknown codes give "UNKNOWN".
std::string_view status_name(std::uint8_t status);
inline std::string_view status_name(Status s) { return status_name(static_cast<std::uint8_t>(s)); }
std::string_view option_name(std::uint8_t type);

// IPv4 Home Address Reply status (RFC 5844 §3.3.2).
namespace ipv4_hoa_status {
inline constexpr std::uint8_t kSuccess = 0;
inline constexpr std::uint8_t kUnspecified = 128;
inline constexpr std::uint8_t kProhibited = 129;
inline constexpr std::uint8_t kIncorrectHoa = 130;
inline constexpr std::uint8_t kInvalidAddress = 131;
inline constexpr std::uint8_t kDynamicAssignmentNotAvailable = 132;
} // namespace ipv4_hoa_status

} // namespace xpmip::wire
