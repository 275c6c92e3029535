// RFC 5847 Heartbeat, one exchange per peer: the MAG's toward its LMA over each WAN path, the
// LMA's toward each configured MAG address. A request every `interval`; `missing_allowed`
// unanswered in a row mark the peer down (the paths toward it go down in the data plane: RFC 8278
// flows move to the other paths) and the next answer marks it up again. An answer whose Restart
// Counter (§6.2) differs from the last one seen says the peer restarted (3GPP TS 23.007 style):
// the MAG registers its MNs again at once, the LMA lets that MAG's bindings go that the MAG does
// not register again. No sockets and no clocks: the daemon passes the time in and sends what
// comes out.
#pragma once

#include "common/address.hpp"
#include "wire/messages.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace xpmip::agent {

using Clock = std::chrono::steady_clock;

struct HeartbeatPeer {
    IpAddress local;    // our address toward it (the MAG: its proxy CoA on the path)
    IpAddress remote;   // the peer's (the MAG: the LMA address it registers with)
};

struct HeartbeatEvent {
    enum class Kind { Send, PeerDown, PeerUp, PeerRestarted };
    Kind kind = Kind::Send;
    std::size_t path = 0;      // the peer's index (the MAG: its WAN path)
    wire::Heartbeat message;   // Kind::Send: the request to send
    std::uint32_t counter = 0; // Kind::PeerRestarted: the new Restart Counter
    // Kind::PeerRestarted: what the peer sent up to this time came from before its restart: its
    // last answer with the old counter.
    Clock::time_point restarted_after{};
};

// RFC 5847 §3.1: the answer to a request, with its Sequence Number and our Restart Counter (§6.2).
wire::Heartbeat heartbeat_response(const wire::Heartbeat& request, std::uint32_t restart_counter);

// One peer address's heartbeat state, for `show peers`.
struct HeartbeatView {
    IpAddress local;
    IpAddress remote;
    std::string state;   // "up", "down", "not asked" (never heard from), "refused" (RFC 5847 unknown), "off"
    std::optional<std::uint32_t> restart_counter;
    unsigned missed = 0;
};

class HeartbeatMonitor {
public:
    // interval 0: off (no requests, every peer up). `peer_role` names the peers in the log ("LMA").
    // `on_first_contact`: a peer is asked only once heard() says it spoke to us (the LMA: a
    // configured MAG address that never sent a PBU is not one it talks to; its other family's,
    // say, would only ever be "down").
    HeartbeatMonitor(std::vector<HeartbeatPeer> peers, std::chrono::milliseconds interval, unsigned missing_allowed,
                     std::string peer_role = "LMA", bool on_first_contact = false);
    // The peer at `remote` spoke to us (a PBU, its own heartbeat): heartbeats to it start; held
    // down, it is asked at once (O(log peers): called per PBU).
    void heard(const IpAddress& remote, Clock::time_point now);

    std::vector<HeartbeatEvent> on_timer(Clock::time_point now);
    // A Heartbeat from `src`: a response to our outstanding request (RFC 5847 §3.2: the same
    // Sequence Number) counts; anything else is ignored (false).
    bool on_message(const IpAddress& src, const wire::Heartbeat& hb, Clock::time_point now,
                    std::vector<HeartbeatEvent>& events);
    // A Binding Error with Status 2 (RFC 6275 §9.2: MH Type not recognized) from `src` while a
    // request of ours is outstanding: the peer does not do RFC 5847. Its paths are not down for
    // that (they come up if they were); it is asked again only after kRefusedRetry. False when
    // no request to `src` was outstanding (the error was about something else).
    bool on_refused(const IpAddress& src, Clock::time_point now, std::vector<HeartbeatEvent>& events);
    std::optional<Clock::time_point> next_deadline() const;
    static constexpr std::chrono::hours kRefusedRetry{1};
    bool up(std::size_t path) const { return paths_.at(path).up; }
    std::vector<HeartbeatView> view(Clock::time_point now) const;
    std::size_t size() const { return paths_.size(); }

private:
    struct PathState {
        HeartbeatPeer peer;
        std::uint32_t next_sequence = 1;
        std::optional<std::uint32_t> outstanding;
        unsigned missed = 0;
        bool up = true;
        std::optional<std::uint32_t> restart_counter;
        Clock::time_point last_answer{};
        bool probed_while_down = false;         // asked at once when it spoke while down
        Clock::time_point refused_until{};      // a Binding Error said it does not do RFC 5847
        Clock::time_point next_send{};
        bool active = true;
    };
    std::vector<PathState> paths_;
    std::map<IpAddress, std::vector<std::size_t>> by_remote_;
    std::string role_;
    std::chrono::milliseconds interval_;
    unsigned missing_allowed_;
};

} // namespace xpmip::agent
