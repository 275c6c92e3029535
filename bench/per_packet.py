"""Per-packet cost of every encapsulation and decapsulation path of the XDP program.

The topology, sessions, input frames and expected output frames are the ones of the
BPF_PROG_TEST_RUN vector test (tests/dataplane/test_bpf_vectors.py), so the benchmark times
exactly the paths that test verifies, and checks each output octet for octet again.

Each path runs through BPF_PROG_TEST_RUN with a large repeat count, behind the wrapper of
bench/bench_testrun.bpf.c, which restores the frame before every run (the kernel does not). The
figure per path is its time less the wrapper's own cost (the wrapper tail-calling a bare
XDP_TX), against a bare XDP_TX program run directly, all in one process and interleaved round
by round so that load from elsewhere hits every case alike.
"""
import json
from types import SimpleNamespace

from common import Checks, Tools, dptest, enter, log, median, run_json

import test_bpf_vectors as V  # noqa: E402  (path set up by common)
from scapy.all import IP, UDP, Ether, Raw, raw  # noqa: E402

DIRECTIONS = [
    ("mag_uplink", "MAG uplink (encap)"),
    ("lma_uplink", "LMA uplink (decap)"),
    ("lma_downlink", "LMA downlink (encap)"),
    ("mag_downlink", "MAG downlink (decap)"),
]
ENCAP_LABELS = {
    "ipip_v4outer": "IP-in-IPv4", "ipip_v6outer": "IP-in-IPv6", "udp_v4outer": "IPv4/UDP",
    "gre_key_v4outer": "GRE key, IPv4", "gre_key_v6outer": "GRE key, IPv6",
    "gre_keyless_v4outer": "GRE no key, IPv4", "gre_keyless_v6outer": "GRE no key, IPv6",
    "udp_tlv_gre_key_v4outer": "IPv4/UDP/TLV/GRE key", "l2_gre_key_v4outer": "L2 GRE key, IPv4",
    "l2_gre_key_v6outer": "L2 GRE key, IPv6", "udp_v4outer_csum_1400": "IPv4/UDP, UDP checksum set, 1400 B",
}


class _Topology(V.BpfVectors):
    """The vector test's namespaces, interfaces, routes, neighbours and sessions (its _build),
    on a world of ours."""


def _paths():
    """(session, direction, inner family, node, ifname, frame, expected) for every path."""
    out = []
    for s in V.L3_SESSIONS:
        for fam in (4, 6):
            out.append((s, "mag_uplink", fam, "mag", "acc0", *V.mag_uplink(s, fam)))
            out.append((s, "lma_uplink", fam, "lma", "tun0", *V.lma_uplink(s, fam)))
            out.append((s, "lma_downlink", fam, "lma", s.core, *V.lma_downlink(s, fam)))
            out.append((s, "mag_downlink", fam, "mag", "wan0", *V.mag_downlink(s, fam)))
    # L2 sessions carry whole frames: an IPv4 frame in the "inner 4" column, IPv6 in "inner 6".
    for s in V.L2_SESSIONS:
        for fam, kind in ((4, "ipv4"), (6, "ipv6")):
            up = V.l2_frame(s.mn_mac, V.STATION_MAC, kind)
            down = V.l2_frame(V.STATION_MAC, s.mn_mac, kind)
            out.append((s, "mag_uplink", fam, "mag", "acc0", up,
                        V.encap_expect(s, src=s.mag_addr, dst=s.lma_addr, key=s.key_ul, payload=up,
                                       ethertype=V.ETH_P_TEB, tos=0, df=True, eth_src=V.WAN0_MAC,
                                       eth_dst=V.TUN0_MAC)))
            out.append((s, "lma_uplink", fam, "lma", "tun0",
                        V.lma_uplink_in(s, up, ethertype=V.ETH_P_TEB, outer_tos=0), up))
            out.append((s, "lma_downlink", fam, "lma", "corel2", down,
                        V.encap_expect(s, src=s.lma_addr, dst=s.mag_addr, key=s.key_dl, payload=down,
                                       ethertype=V.ETH_P_TEB, tos=0, df=True, eth_src=V.TUN0_MAC,
                                       eth_dst=V.WAN0_MAC)))
            out.append((s, "mag_downlink", fam, "mag", "wan0", V.mag_downlink_in(s, down, ethertype=V.ETH_P_TEB),
                        down))
    # IPv4/UDP as a sender may send it, with a UDP checksum (which the LMA then verifies), in a
    # 1400-octet frame: the one path whose cost grows with the packet.
    s = V.S_UDP4
    for fam in (4, 6):
        pkt = V.inner(fam, s.mn(fam), V.CN4 if fam == 4 else V.CN6, df=fam == 4, size=1400 - 14 - 28)
        frame = raw(Ether(src=V.WAN0_MAC, dst=V.TUN0_MAC) / IP(src=s.mag_addr, dst=s.lma_addr, flags="DF") /
                    UDP(sport=s.lma_port, dport=V.UDP_DATA_PORT) / Raw(pkt))
        out.append((SimpleNamespace(name="udp_v4outer_csum_1400"), "lma_uplink", fam, "lma", "tun0", frame,
                    V.eth_ip(V.IF_MAC[s.core], V.NH_MAC[s.core], V.forwarded(pkt))))
    return out


def _expected(exp, actual):
    return exp(actual) if callable(exp) else exp


def run(tools: Tools, checks: Checks, quick: bool):
    rounds, target_ms = (3, 2) if quick else (9, 40)
    paths = _paths()
    world = dptest.World("bpp")
    try:
        _Topology.world = world
        log("per-packet: building the vector test's topology")
        _Topology._build()
        for inst in (_Topology.lma, _Topology.mag):   # the next-hop cache, as the agents keep it
            inst.refresh_next_hops()
        results = {"rounds": rounds, "target_ms_per_round": target_ms, "paths": [], "baseline": {}}
        for node, inst in (("lma", _Topology.lma), ("mag", _Topology.mag)):
            mine = [p for p in paths if p[3] == node]
            base_frame = mine[0][5]
            cases = [
                {"name": "bare_xdp_tx", "ifname": mine[0][4], "target": "xdp_tx", "wrap": False,
                 "frames": [base_frame.hex()]},
                {"name": "wrapper_xdp_tx", "ifname": mine[0][4], "target": "xdp_tx", "wrap": True, "delta": 0,
                 "frames": [base_frame.hex()]},
            ]
            for i, (s, direction, fam, _, ifname, frame, exp) in enumerate(mine):
                delta = len(_expected(exp, b"")) - len(frame)
                cases.append({"name": f"{i}", "ifname": ifname, "frames": [frame.hex()], "delta": delta})
            log(f"per-packet: {node}: {len(mine)} paths x {rounds} rounds")
            out = run_json(enter(inst.ns, tools.bench, "testrun"),
                           input=json.dumps({"rounds": rounds, "target_ms": target_ms, "cases": cases}))
            by_name = {c["name"]: c for c in out["cases"]}
            bare = by_name["bare_xdp_tx"]
            wrapper = by_name["wrapper_xdp_tx"]
            bare_ns = bare["median_ns"]
            overhead = max(0.0, wrapper["median_ns"] - bare_ns)
            # (it ran, and took time: by our clock less the fixed cost, or on a loaded machine, where
            # that difference can round to 0 for a 5 ns program, by the kernel's own)
            checks.check(f"per_packet.{node}.bare_xdp_tx",
                         bare["retval"] == dptest.XDP_TX and (bare_ns > 0 or bare["kernel_median_ns"] > 0),
                         f"verdict {bare['retval']}, {bare_ns:.2f} ns, kernel {bare['kernel_median_ns']:.2f} ns")
            results["baseline"][node] = {"bare_xdp_tx_ns": bare_ns, "wrapper_ns": overhead,
                                         "bare_kernel_ns": bare["kernel_median_ns"],
                                         "fixed_cost_ns": out["fixed_cost_ns"]}
            for i, (s, direction, fam, _, ifname, frame, exp) in enumerate(mine):
                c = by_name[f"{i}"]
                actual = bytes.fromhex(c["output"])
                want = _expected(exp, actual)
                name = f"{s.name}.{direction}.inner{fam}"
                ok = checks.check(
                    f"per_packet.{name}",
                    c["retval"] == dptest.XDP_REDIRECT and actual == want and c["mismatches"] == 0 and
                    c["runs"] > 0 and c["median_ns"] > 0,
                    f"verdict {c['retval']} (want {dptest.XDP_REDIRECT}), output {'ok' if actual == want else 'DIFFERS'}, "
                    f"{c['mismatches']} of {c['runs']} runs took another path, {c['median_ns']:.1f} ns")
                ns = max(0.0, c["median_ns"] - overhead)
                results["paths"].append({
                    "encap": s.name, "label": ENCAP_LABELS.get(s.name, s.name), "direction": direction,
                    "inner": fam, "node": node, "ifname": ifname, "frame_len": len(frame),
                    "ns": ns, "ratio": ns / bare_ns if bare_ns else 0.0, "measured_ns": c["median_ns"],
                    "rounds_ns": c["rounds_ns"], "kernel_median_ns": c["kernel_median_ns"],
                    "repeat": c["repeat"], "runs": c["runs"], "ok": ok})
        b = results["baseline"]
        results["bare_xdp_tx_ns"] = median([b[n]["bare_xdp_tx_ns"] for n in b])
        log(f"per-packet: bare XDP_TX {results['bare_xdp_tx_ns']:.1f} ns, "
            f"median path {median([p['ns'] for p in results['paths']]):.0f} ns")
        return results
    finally:
        world.close()
