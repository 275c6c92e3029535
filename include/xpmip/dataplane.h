/* The map ABI of the xpmip data plane: keys and values of every BPF map, shared by the BPF
 * programs (bpf/) and the C++ loader (user/dataplane/). Plain C, fixed-width types, a size
 * assertion on each struct: both sides compile this one header, nothing is re-declared.
 *
 * Addresses are in network byte order. IPv4 addresses in 16-octet fields are IPv4-mapped
 * (::ffff:a.b.c.d). GRE keys and ports are stored in host byte order.
 */
#ifndef XPMIP_DATAPLANE_H
#define XPMIP_DATAPLANE_H

#include <linux/types.h>

#ifdef __cplusplus
#define XPMIP_ASSERT_SIZE(type, size) static_assert(sizeof(type) == (size), #type " size is part of the map ABI")
#else
#define XPMIP_ASSERT_SIZE(type, size) _Static_assert(sizeof(type) == (size), #type " size is part of the map ABI")
#endif

#define XPMIP_MAX_PATHS 8          /* RFC 8278: bindings (proxy CoAs) per mobility session */
#define XPMIP_MAX_RULES 16         /* rules per steering policy */
#define XPMIP_MAX_LABEL_PREFS 4    /* labels in a rule's preference list */
#define XPMIP_MAX_SPREAD_CPUS 256  /* CPUs tunnel ingress can be spread over (cpu_map keys: CPU ids below it) */

/* UDP port of tunnelled data in "IPv4-UDP" mode and for the TLV-header format (RFC 5844 §3). */
#define XPMIP_UDP_PORT_DATA 5437
/* RFC 5845 §7.1 Figure 6: Type (0, where an IP version nibble would be) and Res. share the first
 * octet, then Next Header (8 bits) and Length (16 bits): one 32-bit word. */
#define XPMIP_TLV_HEADER_LEN 4

/* GRE (RFC 2784, RFC 2890). */
#define XPMIP_GRE_FLAG_C 0x8000
#define XPMIP_GRE_FLAG_R 0x4000
#define XPMIP_GRE_FLAG_K 0x2000
#define XPMIP_GRE_FLAG_S 0x1000
#define XPMIP_GRE_VERSION_MASK 0x0007
#define XPMIP_GRE_PROTO_TEB 0x6558 /* Transparent Ethernet Bridging: L2 sessions */

/* What this instance of the data plane is. */
enum xpmip_role {
    XPMIP_ROLE_LMA = 1,
    XPMIP_ROLE_MAG = 2,
};

/* What an interface is to the gateway. */
enum xpmip_if_kind {
    XPMIP_IF_CORE = 1,    /* LMA: toward the correspondent nodes of one realm (L3) */
    XPMIP_IF_CORE_L2 = 2, /* LMA: bridged side of L2 (Ethernet-in-GRE) sessions of one realm */
    XPMIP_IF_TUNNEL = 3,  /* LMA or MAG: the transport network between MAG and LMA */
    XPMIP_IF_ACCESS = 4,  /* MAG: the mobile nodes' access link */
};

/* How a session's packets are carried between MAG and LMA. */
enum xpmip_encap {
    XPMIP_ENCAP_IPIP = 1,        /* inner IPv4/IPv6 directly in outer IPv6 (RFC 2473) or IPv4 (RFC 2003) */
    XPMIP_ENCAP_UDP = 2,         /* IPv4 / UDP 5437 / inner (RFC 5844 "IPv4-UDP") */
    XPMIP_ENCAP_GRE = 3,         /* outer IP / GRE [key] / inner (RFC 5845 Figure 7) */
    XPMIP_ENCAP_UDP_TLV_GRE = 4, /* IPv4 / UDP 5437 / TLV header / GRE [key] / inner (RFC 5845 Figure 5) */
};

enum xpmip_path_flags {
    XPMIP_PATH_UP = 1 << 0,   /* usable: link has carrier and the binding is alive */
    XPMIP_PATH_IPV4 = 1 << 1, /* outer header is IPv4 (local/remote are IPv4-mapped) */
};

enum xpmip_session_flags {
    XPMIP_SESSION_L2 = 1 << 0,      /* Ethernet frames in GRE (protocol 0x6558) */
    XPMIP_SESSION_GRE_KEY = 1 << 1, /* GRE with keys (RFC 5845 §3.3); without: GRE mode only */
    XPMIP_SESSION_HNP = 1 << 2,     /* hnp/hnp_len valid (IPv6 service) */
    XPMIP_SESSION_HOA = 1 << 3,     /* hoa/hoa_len valid (IPv4 service) */
};

/* The data plane is laid out for one dependent map lookup per packet at a million sessions
 * (README "Data plane at scale"): the key a packet arrives with finds everything needed to
 * forward it. Received tunnel packets carry our own GRE key, which is the session's index into the
 * `sessions` array (the LMA assigns uplink keys, the MAG downlink keys, RFC 5845 §3.3); packets
 * toward the tunnel are found by the MN's /32 IPv4 home address or /64 prefix (`mn_routes4/6`,
 * hashes) or, at the MAG, its station MAC (`stations`), whose values carry the path to send them
 * on. Longest-prefix tries remain only for what needs them (other prefix lengths, key-less
 * tunnels), and a second lookup only for multipath sessions (their paths) and for keys that are
 * not a session's index. */

/* One binding of a mobility session: a tunnel between one MAG proxy CoA and the LMA. */
struct xpmip_path {
    __u8 local[16];       /* this gateway's tunnel endpoint */
    __u8 remote[16];      /* the peer's: proxy CoA (at the LMA) or LMA address (at the MAG) */
    __u32 key_downlink;   /* GRE key of LMA->MAG packets, assigned by the MAG (RFC 5845 §3.3) */
    __u32 key_uplink;     /* GRE key of MAG->LMA packets, assigned by the LMA */
    __u16 remote_port;    /* peer's UDP port for UDP encapsulations (5437, or NAT-mapped) */
    __u16 nexthop;        /* nexthops index: egress, MTU, key scope, resolved MACs; 0: none (FIB) */
    __u8 label;           /* RFC 8278 If-Label */
    __u8 bid;             /* RFC 8278 Binding-Id */
    __u8 weight;          /* share in per-packet distribution */
    __u8 flags;           /* enum xpmip_path_flags */
};
XPMIP_ASSERT_SIZE(struct xpmip_path, 48);

struct xpmip_counter {
    __u64 packets;
    __u64 bytes;          /* inner octets (the MN's packets or frames) */
};
XPMIP_ASSERT_SIZE(struct xpmip_counter, 16);

/* sessions (ARRAY, index = session id, 0 unused): a mobility session with its first path, and its
 * counters, added to atomically by every CPU (no per-CPU copies: memory does not grow with cores). */
struct xpmip_session {
    __u32 id;             /* its own index; 0: the slot is free */
    __u8 encap;           /* enum xpmip_encap */
    __u8 flags;           /* enum xpmip_session_flags */
    __u8 npaths;          /* paths; beyond the first in session_paths */
    __u8 policy;          /* steering policy id, 0: none (first up path) */
    __u32 realm;          /* addressing realm: overlapping private IPv4 per operator (RFC 5845 Fig. 1) */
    __u32 mn_ifindex;     /* toward the MN: MAG access interface, LMA realm core interface (0: FIB) */
    __u8 hnp[16];         /* IPv6 home network prefix */
    __u8 hnp_len;
    __u8 hoa_len;         /* IPv4 home address prefix length (32 for one address) */
    __u8 mn_mac[6];       /* MN's MAC: MAG delivery, and the L2 session's station */
    __u8 hoa[4];          /* IPv4 home address */
    __u32 pad;
    struct xpmip_path path;     /* paths[0] */
    struct xpmip_counter rx;    /* from the tunnel: LMA uplink, MAG downlink */
    struct xpmip_counter tx;    /* into the tunnel when found by a prefix (LPM) route */
};
XPMIP_ASSERT_SIZE(struct xpmip_session, 128);

/* session_paths (HASH, multipath sessions only): every path of a session with its counters. */
struct xpmip_paths {
    __u32 npaths;
    __u32 pad;
    struct xpmip_path paths[XPMIP_MAX_PATHS];
    struct xpmip_counter tx[XPMIP_MAX_PATHS];    /* tunnelled out on each path (inner octets) */
    struct xpmip_counter rx[XPMIP_MAX_PATHS];    /* received from each path */
};
XPMIP_ASSERT_SIZE(struct xpmip_paths, 8 + 8 * 48 + 16 * 16);

/* mn_routes4 (HASH): (realm, /32 IPv4 home address); mn_routes6 (HASH): (realm, /64 prefix):
 * what encapsulation toward the MAG (LMA downlink) or the LMA (MAG, stack-emitted) needs. */
struct xpmip_route4_key {
    __u32 realm;
    __u8 addr[4];
};
XPMIP_ASSERT_SIZE(struct xpmip_route4_key, 8);

struct xpmip_route6_key {
    __u32 realm;
    __u32 pad;
    __u8 prefix[8];       /* the upper 64 bits */
};
XPMIP_ASSERT_SIZE(struct xpmip_route6_key, 16);

struct xpmip_route {
    __u32 session;
    __u8 encap;
    __u8 flags;           /* the session's */
    __u8 npaths;
    __u8 policy;
    struct xpmip_path path;     /* the session's first path */
    struct xpmip_counter tx;    /* toward the MN's peer gateway (LMA downlink, MAG uplink) */
};
XPMIP_ASSERT_SIZE(struct xpmip_route, 72);

/* mn_prefixes4 / mn_prefixes6 (LPM): MN routes of other lengths (a home network prefix not a /64,
 * an IPv4 home address prefix): (realm, prefix) -> session id. prefixlen = 32 (realm) + length. */
struct xpmip_prefix4_key {
    __u32 prefixlen;
    __u32 realm;
    __u8 addr[4];
};
XPMIP_ASSERT_SIZE(struct xpmip_prefix4_key, 12);

struct xpmip_prefix6_key {
    __u32 prefixlen;
    __u32 realm;
    __u8 addr[16];
};
XPMIP_ASSERT_SIZE(struct xpmip_prefix6_key, 24);

/* stations (HASH): (interface, MN MAC) -> the MN's uplink at the MAG's access side (source MAC;
 * with what source validation needs), or the downlink of an L2 session at the LMA's L2 core side
 * (destination MAC). */
struct xpmip_station_key {
    __u32 ifindex;
    __u8 mac[6];
    __u16 pad;
};
XPMIP_ASSERT_SIZE(struct xpmip_station_key, 12);

struct xpmip_station {
    struct xpmip_route route;
    __u8 hnp[16];
    __u8 hnp_len;
    __u8 hoa_len;
    __u8 hoa[4];
    __u16 pad;
};
XPMIP_ASSERT_SIZE(struct xpmip_station, 72 + 24);

/* tunnel_keys (HASH): a received GRE key that is not its session's index (scoped keys, the other
 * paths of a multipath session, keys of sessions restored from elsewhere) -> session/path. */
struct xpmip_tunnel_key {
    __u32 scope;          /* realm of the tunnel interface (0 normally) */
    __u32 key;
};
XPMIP_ASSERT_SIZE(struct xpmip_tunnel_key, 8);

struct xpmip_path_ref {
    __u32 session;
    __u32 path;           /* index among the session's paths */
};
XPMIP_ASSERT_SIZE(struct xpmip_path_ref, 8);

/* tunnel_keyless (LPM): packets without a GRE key are found by (scope, outer source, the
 * inner MN-side address): inner source at the LMA, inner destination at the MAG.
 * prefixlen = 32 + 128 + (96 + IPv4 prefix length | IPv6 prefix length). */
struct xpmip_keyless_key {
    __u32 prefixlen;
    __u32 scope;
    __u8 peer[16];
    __u8 inner[16];
};
XPMIP_ASSERT_SIZE(struct xpmip_keyless_key, 40);

enum xpmip_nexthop_flags {
    XPMIP_NEXTHOP_RESOLVED = 1 << 0,  /* smac/dmac are the neighbour's: no FIB lookup */
    XPMIP_NEXTHOP_USED = 1 << 1,      /* the entry is taken (by paths toward `remote`) */
};

/* nexthops (ARRAY, small, index 0 unused): what paths share about how their packets leave: the
 * egress interface and MTU they are held to, the key scope, and (when the agent has resolved
 * them from the kernel's routes and neighbours) the MACs, so encapsulation needs no FIB lookup. */
struct xpmip_nexthop {
    __u32 ifindex;        /* egress; 0: as the FIB decides (when resolved: the neighbour's interface) */
    __u16 mtu;            /* outer MTU held to; 0: the FIB's (when resolved: the egress interface's) */
    __u8 flags;           /* enum xpmip_nexthop_flags */
    __u8 pad;
    __u32 scope;          /* key scope of the paths' tunnel interface */
    __u8 smac[6];
    __u8 dmac[6];
    __u8 remote[16];      /* the tunnel peer these paths lead to (what the agent resolves) */
    __u8 local[16];       /* their source (our address): source routing may choose the egress */
    __u32 pinned_ifindex; /* the egress the paths ask for (0: any), kept apart from a resolution's */
    __u16 pinned_mtu;     /* the MTU the paths ask for (0: the interface's) */
    __u16 pad2;
};
XPMIP_ASSERT_SIZE(struct xpmip_nexthop, 64);

/* ifaces: ifindex -> what the interface is. */
struct xpmip_iface {
    __u32 kind;           /* enum xpmip_if_kind */
    __u32 realm;          /* CORE/CORE_L2/ACCESS: the realm; TUNNEL: key scope */
    __u8 mac[6];          /* the interface's own MAC */
    __u16 mtu;            /* packets sent out of it are held to this (access links: RFC 1812 §5.2.2) */
    __u8 addr4[4];        /* source of ICMP errors this gateway sends from here */
    __u8 addr6[16];
    __u32 flags;          /* enum xpmip_iface_flags */
};
XPMIP_ASSERT_SIZE(struct xpmip_iface, 40);

enum xpmip_iface_flags {
    /* Signaling (MH, UDP 5436) addressed to this host is dropped here, in XDP, and counted
     * (XPMIP_STAT_DROP_SIGNALING): MAGs and LMAs are not on this side (README "Trust boundaries"). */
    XPMIP_IFACE_NO_SIGNALING = 1 << 0,
};

/* config[0]: the instance. */
enum xpmip_config_flags {
    XPMIP_CONFIG_ROUTE_CACHE = 1 << 0,  /* the LMA uplink may use route_cache */
};

struct xpmip_config {
    __u32 role;           /* enum xpmip_role */
    __u32 sessions;       /* entries of the sessions array: keys below it may be session indexes */
    __u32 spread_count;   /* entries of spread_cpus in use; 0: tunnel packets stay on their CPU */
    __u32 route_generation; /* route_cache entries of another generation are stale */
    __u32 flags;          /* enum xpmip_config_flags */
    __u32 route_ttl_ms;   /* route_cache entries older than this are stale (0: XPMIP_ROUTE_CACHE_TTL_MS) */
    __u32 abi_version;    /* XPMIP_MAP_ABI_VERSION of the build that loaded the maps */
};
XPMIP_ASSERT_SIZE(struct xpmip_config, 28);

/* The layout and meaning of these maps. A build with another version refuses pinned maps of
 * this one (an agent upgrade keeps maps only when the layout is the same: README "Upgrades").
 * Raise it with any change to a map's key or value a restarted agent could misread. */
#define XPMIP_MAP_ABI_VERSION 2

/* route_cache (LRU hash): the route of the LMA uplink toward a correspondent as bpf_fib_lookup
 * last found it, in the realm's core interface (README "Route cache"). An entry serves while it is
 * of the current route_generation (the agent moves it on every route, neighbour or link event)
 * and younger than config.route_ttl_ms. */
#define XPMIP_ROUTE_CACHE_TTL_MS 1000
struct xpmip_route_cache_key {
    __u32 oif;            /* the realm's core interface */
    __u8 dst[16];         /* the correspondent */
};
XPMIP_ASSERT_SIZE(struct xpmip_route_cache_key, 20);

struct xpmip_route_cache_entry {
    __u64 filled_ns;      /* bpf_ktime_get_coarse_ns() when filled */
    __u32 generation;     /* config.route_generation then */
    __u32 ifindex;        /* egress */
    __u16 mtu;            /* the route's MTU */
    __u8 smac[6];
    __u8 dmac[6];
    __u16 pad;
};
XPMIP_ASSERT_SIZE(struct xpmip_route_cache_entry, 32);

/* Steering (RFC 8278 §3 "routing rules"). Rules are written from the mobile node's point of
 * view, so both ends classify a flow alike: "remote" is the correspondent (the destination of
 * uplink packets, the source of downlink ones), "local" is the MN. */
enum xpmip_steer_mode {
    XPMIP_STEER_PER_FLOW = 0,   /* every packet of a flow on one path (5-tuple rendezvous hash) */
    XPMIP_STEER_PER_PACKET = 1, /* packets spread by path weight */
};

enum xpmip_rule_flags {
    XPMIP_RULE_STRICT = 1 << 0, /* no fallback to other labels' paths: drop when none is up */
};

struct xpmip_rule {
    __u8 proto;           /* IP protocol, 0: any */
    __u8 dscp;            /* 0..63, 0xff: any */
    __u8 family;          /* 4 or 6 with a remote prefix, 0: any */
    __u8 remote_len;      /* remote prefix length, 0: any */
    __u8 remote[16];      /* remote (correspondent) prefix */
    __u16 remote_port_lo, remote_port_hi; /* correspondent port range (host order) */
    __u16 local_port_lo, local_port_hi;   /* MN port range */
    __u8 mode;            /* enum xpmip_steer_mode */
    __u8 flags;           /* enum xpmip_rule_flags */
    __u8 nlabels;
    __u8 labels[XPMIP_MAX_LABEL_PREFS]; /* If-Labels in order of preference */
    __u8 pad;
};
XPMIP_ASSERT_SIZE(struct xpmip_rule, 36);

struct xpmip_policy {
    __u32 nrules;
    struct xpmip_rule rules[XPMIP_MAX_RULES];
};
XPMIP_ASSERT_SIZE(struct xpmip_policy, 4 + 16 * 36);

/* counters (per CPU array): drops by reason and notable events. Names in user/dataplane. */
enum xpmip_stat {
    XPMIP_STAT_DROP_NO_SESSION = 0,   /* tunnel packet matching no session */
    XPMIP_STAT_DROP_UNKNOWN_KEY,      /* GRE key of no session */
    XPMIP_STAT_DROP_MALFORMED,        /* truncated or inconsistent headers */
    XPMIP_STAT_DROP_GRE_HEADER,       /* GRE version bits or the R flag set (RFC 2784 §2.3) */
    XPMIP_STAT_DROP_GRE_PROTOCOL,     /* GRE protocol type we do not carry */
    XPMIP_STAT_DROP_TLV_LENGTH,       /* TLV Length disagrees with UDP (RFC 5845 §7.1) */
    XPMIP_STAT_DROP_TLV_HEADER,       /* TLV Type or Next Header we cannot take */
    XPMIP_STAT_DROP_ENCAP_MISMATCH,   /* format other than the session negotiated */
    XPMIP_STAT_DROP_OUTER_SPOOF,      /* outer source is not one of the session's paths */
    XPMIP_STAT_DROP_INNER_SPOOF,      /* inner source is not the MN's HoA/HNP */
    XPMIP_STAT_DROP_NO_PATH,          /* no usable path for the flow */
    XPMIP_STAT_DROP_TTL,              /* TTL/hop limit expired (ICMP sent) */
    XPMIP_STAT_DROP_TOO_BIG,          /* over the path MTU (ICMP sent) */
    XPMIP_STAT_DROP_TOO_BIG_NO_DF,    /* over the path MTU, IPv4 without DF: cannot fragment */
    XPMIP_STAT_DROP_FIB,              /* no route (unreachable, blackhole, prohibited) */
    XPMIP_STAT_DROP_FRAGMENT,         /* fragmented outer packet: not reassembled */
    XPMIP_STAT_DROP_ECN,              /* CE outer on a Not-ECT inner packet (RFC 6040 §4.2) */
    XPMIP_STAT_DROP_HEADROOM,         /* could not grow or shrink the packet */
    XPMIP_STAT_DROP_SESSION_GONE,     /* lookup raced a session removal */
    XPMIP_STAT_DROP_CHECKSUM,         /* non-zero, wrong UDP checksum (RFC 1122 §4.1.3.4) */
    XPMIP_STAT_PASS_NO_NEIGH,         /* XDP passed a packet to tc because the neighbour is unresolved */
    XPMIP_STAT_ICMP_SENT,             /* ICMP error generated (too big, time exceeded) */
    XPMIP_STAT_UNKNOWN_STATION,       /* frame from an unknown MAC reported to the agent */
    XPMIP_STAT_STEER_FALLBACK,        /* flow carried by a path outside its preferred labels */
    XPMIP_STAT_TC_ENCAP,              /* packets encapsulated by tc (stack-emitted or passed) */
    XPMIP_STAT_TC_DECAP,              /* packets decapsulated by tc */
    XPMIP_STAT_DROP_IP_CHECKSUM,      /* an IPv4 header checksum (outer or inner) is wrong (RFC 1812 §5.2.2) */
    XPMIP_STAT_DROP_GRE_CHECKSUM,     /* GRE with the C bit and a wrong checksum (RFC 2784 §2.5) */
    XPMIP_STAT_DROP_NOT_FORWARDABLE,  /* inner destination or source a router does not forward (RFC 1812 §5.3.7) */
    XPMIP_STAT_CPU_SPREAD,            /* tunnel packets handed to another CPU (cpumap), counted on the giver */
    XPMIP_STAT_SPREAD_RECEIVED,       /* tunnel packets taken from the cpumap, counted on the taker */
    XPMIP_STAT_DROP_SIGNALING,        /* MH or UDP 5436 arriving where no MAG/LMA is (XPMIP_IFACE_NO_SIGNALING) */
    XPMIP_STAT_MAX,
};

/* events ring buffer: what the agent must act on. */
enum xpmip_event_type {
    XPMIP_EVENT_UNKNOWN_STATION = 1,  /* frame from a MAC with no session on an access link */
};

struct xpmip_event {
    __u32 type;
    __u32 ifindex;
    __u8 mac[6];
    __u16 ethertype;      /* host order */
    __u64 timestamp_ns;
};
XPMIP_ASSERT_SIZE(struct xpmip_event, 24);

#endif /* XPMIP_DATAPLANE_H */
