// RFC 5846 Binding Revocation as the LMA starts it (§8.1): what to revoke, the BRIs out, and the
// revocations waiting for their BRA (§6.2.2), with their retransmission (§6.3, §11).
#pragma once

#include "common/address.hpp"
#include "wire/framing.hpp"
#include "wire/messages.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::lma {

using Clock = std::chrono::steady_clock;

// `xpmip revoke --mn ID | --peer NAME | --all [--trigger CODE]`, or the LMA's own reasons (a
// subscriber gone from the configuration).
struct RevocationRequest {
    enum class Scope { MobileNode, Peer, All };
    Scope scope = Scope::MobileNode;
    std::string target;   // the MN-ID or the peer's name
    // Per MN default Administrative Reason; a peer or all: Per-Peer Policy (§8.1, G set).
    std::optional<std::uint8_t> trigger;
};

// A BRI to send, the way the bindings it revokes were registered (§4: over IPv4 the PBU's UDP
// ports and addresses).
struct OutgoingBri {
    wire::Transport transport = wire::Transport::Ipv6;
    IpAddress src;
    IpAddress dst;
    std::uint16_t dst_port = 0;
    wire::BindingRevocationIndication bri;
};

// A BRI sent and not yet answered: the MNs it revokes (§8.1: each BCE flagged "revocation in
// progress" until the BRA or the last retransmission).
struct PendingRevocation {
    OutgoingBri out;
    std::vector<std::string> mns;
    unsigned retransmissions = 0;
    std::chrono::milliseconds timeout{};
    Clock::time_point next{};
};

// What came of a BRA or a revocation's last wait (for the log and the tests).
struct RevocationOutcome {
    std::size_t removed = 0;
    std::size_t kept = 0;
};

} // namespace xpmip::lma
