#include "dataplane/stats.hpp"

#include <vector>

namespace xpmip::dataplane {

std::string_view stat_name(unsigned stat) {
    switch (static_cast<xpmip_stat>(stat)) {
    case XPMIP_STAT_DROP_NO_SESSION: return "drop_no_session";
    case XPMIP_STAT_DROP_UNKNOWN_KEY: return "drop_unknown_key";
    case XPMIP_STAT_DROP_MALFORMED: return "drop_malformed";
    case XPMIP_STAT_DROP_GRE_HEADER: return "drop_gre_header";
    case XPMIP_STAT_DROP_GRE_PROTOCOL: return "drop_gre_protocol";
    case XPMIP_STAT_DROP_TLV_LENGTH: return "drop_tlv_length";
    case XPMIP_STAT_DROP_TLV_HEADER: return "drop_tlv_header";
    case XPMIP_STAT_DROP_ENCAP_MISMATCH: return "drop_encap_mismatch";
    case XPMIP_STAT_DROP_OUTER_SPOOF: return "drop_outer_spoof";
    case XPMIP_STAT_DROP_INNER_SPOOF: return "drop_inner_spoof";
    case XPMIP_STAT_DROP_NO_PATH: return "drop_no_path";
    case XPMIP_STAT_DROP_TTL: return "drop_ttl";
    case XPMIP_STAT_DROP_TOO_BIG: return "drop_too_big";
    case XPMIP_STAT_DROP_TOO_BIG_NO_DF: return "drop_too_big_no_df";
    case XPMIP_STAT_DROP_FIB: return "drop_fib";
    case XPMIP_STAT_DROP_FRAGMENT: return "drop_fragment";
    case XPMIP_STAT_DROP_ECN: return "drop_ecn";
    case XPMIP_STAT_DROP_HEADROOM: return "drop_headroom";
    case XPMIP_STAT_DROP_SESSION_GONE: return "drop_session_gone";
    case XPMIP_STAT_DROP_CHECKSUM: return "drop_checksum";
    case XPMIP_STAT_PASS_NO_NEIGH: return "pass_no_neigh";
    case XPMIP_STAT_ICMP_SENT: return "icmp_sent";
    case XPMIP_STAT_UNKNOWN_STATION: return "unknown_station";
    case XPMIP_STAT_STEER_FALLBACK: return "steer_fallback";
    case XPMIP_STAT_TC_ENCAP: return "tc_encap";
    case XPMIP_STAT_TC_DECAP: return "tc_decap";
    case XPMIP_STAT_DROP_IP_CHECKSUM: return "drop_ip_checksum";
    case XPMIP_STAT_DROP_GRE_CHECKSUM: return "drop_gre_checksum";
    case XPMIP_STAT_DROP_NOT_FORWARDABLE: return "drop_not_forwardable";
    case XPMIP_STAT_CPU_SPREAD: return "cpu_spread";
    case XPMIP_STAT_SPREAD_RECEIVED: return "spread_received";
    case XPMIP_STAT_DROP_SIGNALING: return "drop_signaling";
    case XPMIP_STAT_MAX: break;
    }
    return "unknown";
}

Counters read_counters(const MapSet& maps) {
    Counters out{};
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(possible_cpus()));
    for (std::uint32_t i = 0; i < XPMIP_STAT_MAX; ++i) {
        if (maps.lookup(MapId::Counters, &i, per_cpu.data())) {
            for (auto v : per_cpu) {
                out[i] += v;
            }
        }
    }
    return out;
}

void reset_counters(const MapSet& maps) {
    std::vector<std::uint64_t> zero(static_cast<std::size_t>(possible_cpus()));
    for (std::uint32_t i = 0; i < XPMIP_STAT_MAX; ++i) {
        maps.update(MapId::Counters, &i, zero.data());
    }
}

} // namespace xpmip::dataplane
