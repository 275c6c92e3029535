"""Sessions at scale, without the agent: map memory per session and per-packet cost with one
session against a million in the maps.

An LMA instance is loaded with its session limit (Limits.sessions, `xpmip-dp load --sessions N`)
set to N and filled with N GRE-keyed IPv4 sessions through the session API (`xpmip-bench fill`,
SessionTable::upsert, what the agent will call). Map memory is what bpftool reports for each of
the instance's pinned maps (bytes_memlock: the kernel's own accounting of the map's memory),
empty and full.

At the largest N, the LMA's uplink (decapsulation: GRE key -> session) and downlink
(encapsulation: MN address -> session) are timed like the per-packet benchmark, with 1 session in
the maps, then with N: always the same MN, and "spread": every packet for another MN drawn at
random over all N sessions (the test-run wrapper rewrites the GRE key / MN address and the IPv4
checksum each run, bench_testrun.bpf.c), so the lookups miss the caches as real traffic does.

Beside them, in the same test run, the references (bench_testrun.bpf.c): a bare XDP_TX, a minimal
GRE-key encapsulation, and a minimal decapsulation with one lookup in an N-entry hash, with one
hot key and with a random key of the N every packet (the cold-lookup reference).
"""
import ipaddress
import json
import os
import struct

from common import Checks, Tools, dptest, enter, log, median, run_json

from scapy.all import GRE, IP, UDP, Ether, Raw, raw  # noqa: E402

TUN0_MAC, CORE0_MAC, PEER_MAC, NH_MAC = "02:00:00:00:0a:01", "02:00:00:00:c0:01", "02:00:00:00:0b:02", \
    "02:00:00:00:c0:10"
LMA4, MAG4, CORE0_4, NH4, CN4 = "203.0.113.1", "203.0.113.2", "192.0.2.1", "192.0.2.10", "198.51.100.20"
HOA0, HNP0 = "10.64.0.1", "2001:db8:100::/64"
# Our (uplink) key of a session's single path is its id, as the agent assigns it (README "Data
# plane at scale"): session 1+i has key 1+i, so a packet's key indexes the sessions array.
KEY_UL0, KEY_DL0 = 1, 0x20000001
# Offsets in the frames below (Ethernet 14, outer IPv4 20, GRE 8): what the wrapper varies.
UPLINK_KEY_OFF, UPLINK_INNER_CSUM_OFF, UPLINK_INNER_SRC_OFF = 38, 52, 54
DOWNLINK_CSUM_OFF, DOWNLINK_DST_OFF = 24, 30


def template():
    """Session i (0-based) of a fill: id 1+i, HoA HOA0+i, HNP +i, keys +i (xpmip-bench fill)."""
    return {"id": 1, "encap": "gre", "gre_keys": True, "realm": 1, "hoa": HOA0, "hnp": HNP0,
            "mn_interface": "core0",
            "paths": [{"local": LMA4, "remote": MAG4, "key_downlink": KEY_DL0, "key_uplink": KEY_UL0}]}


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _with_ipv4(frame, ip_off, *, src=None, dst=None):
    """`frame` with the IPv4 header at ip_off given another source/destination, checksum redone."""
    b = bytearray(frame)
    if src:
        b[ip_off + 12:ip_off + 16] = ipaddress.IPv4Address(src).packed
    if dst:
        b[ip_off + 16:ip_off + 20] = ipaddress.IPv4Address(dst).packed
    b[ip_off + 10:ip_off + 12] = b"\0\0"
    b[ip_off + 10:ip_off + 12] = struct.pack("!H", _csum(bytes(b[ip_off:ip_off + 20])))
    return bytes(b)


def uplink_frames(indexes):
    """MAG -> LMA GRE packets of sessions `indexes` (inner UDP checksum 0: same bytes but the
    key and the inner source)."""
    inner = IP(src=HOA0, dst=CN4, ttl=64, flags="DF") / UDP(sport=40000, dport=7, chksum=0) / Raw(b"x" * 18)
    base = raw(Ether(src=PEER_MAC, dst=TUN0_MAC) / IP(src=MAG4, dst=LMA4, ttl=64, flags="DF", proto=47) /
               GRE(key_present=1, key=KEY_UL0, proto=0x0800) / inner)
    out = []
    for i in indexes:
        b = bytearray(base)
        b[38:42] = struct.pack("!I", KEY_UL0 + i)          # 14 Ethernet + 20 IPv4 + 4 GRE
        hoa = str(ipaddress.IPv4Address(HOA0) + i)
        out.append(_with_ipv4(bytes(b), 42, src=hoa))
    return out


def downlink_frames(indexes):
    """Correspondent -> MN packets of sessions `indexes`, arriving on core0."""
    base = raw(Ether(src=NH_MAC, dst=CORE0_MAC) / IP(src=CN4, dst=HOA0, ttl=64, flags="DF") /
               UDP(sport=7, dport=40000, chksum=0) / Raw(b"x" * 18))
    return [_with_ipv4(base, 14, dst=str(ipaddress.IPv4Address(HOA0) + i)) for i in indexes]


def map_memory(pin_dir):
    """{map name: bytes_memlock} of an instance's pinned maps, as bpftool reports them."""
    out = {}
    for name in sorted(os.listdir(pin_dir)):
        path = os.path.join(pin_dir, name)
        if not os.path.isfile(path):
            continue
        r = dptest.sh("bpftool", "-j", "map", "show", "pinned", path, check=False)
        if r.returncode == 0:
            m = json.loads(r.stdout)
            out[name] = {"type": m.get("type"), "max_entries": m.get("max_entries"),
                         "bytes": int(m.get("bytes_memlock", 0))}
    return out


class Lma:
    """An LMA namespace with tun0 and core0 (peers in another namespace), routes and neighbours
    for the sessions of template()."""

    def __init__(self, world, tag=""):
        self.world = world
        self.ns = world.netns(f"lma{tag}")
        peer = world.netns(f"peer{tag}")
        peer.quiet()
        world.veth(self.ns, "tun0", peer, "p-tun0", a_mac=TUN0_MAC, b_mac=PEER_MAC)
        world.veth(self.ns, "core0", peer, "p-core0", a_mac=CORE0_MAC, b_mac=NH_MAC)
        self.ns.forwarding()
        for c in (f"addr add {LMA4}/24 dev tun0", f"addr add {CORE0_4}/24 dev core0",
                  f"neigh replace {MAG4} lladdr {PEER_MAC} dev tun0 nud permanent",
                  f"neigh replace {NH4} lladdr {NH_MAC} dev core0 nud permanent",
                  "route add 198.51.100.0/24 via " + NH4 + " dev core0"):
            self.ns.ip(c)

    def load(self, tools, short, sessions):
        inst = self.world.instance(self.ns, short, "lma", ["tun0:tunnel", "core0:core:1"], sessions=sessions)
        inst.pin_dir = f"/sys/fs/bpf/xpmip/{inst.name}"
        return inst

    def fill(self, tools, inst, count, first_index=0):
        t = template()
        t["id"] += first_index
        t["hoa"] = str(ipaddress.IPv4Address(HOA0) + first_index)
        net = ipaddress.IPv6Network(HNP0)
        t["hnp"] = str(ipaddress.IPv6Network((int(net.network_address) + (first_index << 64), 64)))
        for p in t["paths"]:
            p["key_uplink"] += first_index
            p["key_downlink"] += first_index
        return run_json(enter(self.ns, tools.bench, "fill", "-i", inst.name, "--count", str(count),
                              "--first", str(1 + first_index)), input=json.dumps(t), timeout=3600)


def _vary_uplink(n):
    return {"count": n, "fields": [{"offset": UPLINK_KEY_OFF},
                                   {"offset": UPLINK_INNER_SRC_OFF, "checksum_offset": UPLINK_INNER_CSUM_OFF}]}


def _vary_downlink(n):
    return {"count": n, "fields": [{"offset": DOWNLINK_DST_OFF, "checksum_offset": DOWNLINK_CSUM_OFF}]}


def _time(tools, lma, cases, rounds, target_ms, ref_keys=0):
    """Every case's rounds less the wrapper's own cost, measured the same way: a wrapper in front
    of a bare XDP_TX varying the same fields as the case. `ref_keys` > 0: the minimal decap's
    table holds that many keys."""
    up = uplink_frames([0])[0].hex()
    overheads = {}   # the vary spec's fields (as JSON) -> its overhead case's name
    for c in cases:
        spec_key = json.dumps(c.get("vary", {}).get("fields", []), sort_keys=True)
        overheads.setdefault(spec_key, f"wrapper_xdp_tx/{len(overheads)}")
    extra = [{"name": "bare_xdp_tx", "ifname": "tun0", "target": "xdp_tx", "wrap": False, "frames": [up]}]
    for spec_key, name in overheads.items():
        o = {"name": name, "ifname": "tun0", "target": "xdp_tx", "delta": 0, "frames": [up]}
        if json.loads(spec_key):
            o["vary"] = {"count": 1 << 20, "fields": json.loads(spec_key)}
        extra.append(o)
    spec = {"rounds": rounds, "target_ms": target_ms, "ref_keys": {"count": ref_keys, "first": KEY_UL0},
            "cases": extra + cases}
    out = run_json(enter(lma.ns, tools.bench, "testrun"), input=json.dumps(spec))
    by = {c["name"]: c for c in out["cases"]}
    bare = by["bare_xdp_tx"]["median_ns"]
    for c in cases:
        spec_key = json.dumps(c.get("vary", {}).get("fields", []), sort_keys=True)
        by[c["name"]]["overhead_ns"] = max(0.0, by[overheads[spec_key]]["median_ns"] - bare)
    for c in extra:
        by[c["name"]]["overhead_ns"] = 0.0
    return by


def _cases(tag, spread=0):
    """The LMA's two paths for session 0 (tag "1", "same"), or spread over `spread` sessions."""
    up = {"name": f"uplink/{tag}", "ifname": "tun0", "delta": -28, "frames": [uplink_frames([0])[0].hex()]}
    down = {"name": f"downlink/{tag}", "ifname": "core0", "delta": 28, "frames": [downlink_frames([0])[0].hex()]}
    if spread:
        up["vary"], down["vary"] = _vary_uplink(spread), _vary_downlink(spread)
    return [up, down]


def _reference_cases(n):
    """The minimal encap (hot) and decap (hot, and a random key of the n every packet)."""
    up, down = uplink_frames([0])[0].hex(), downlink_frames([0])[0].hex()
    return [
        {"name": "ref/encap", "ifname": "core0", "target": "ref_encap", "delta": 28, "frames": [down]},
        {"name": "ref/decap_hot", "ifname": "tun0", "target": "ref_decap", "delta": -28, "frames": [up]},
        {"name": "ref/decap_cold", "ifname": "tun0", "target": "ref_decap", "delta": -28, "frames": [up],
         "vary": {"count": n, "fields": [{"offset": UPLINK_KEY_OFF}]}},
    ]


def run(tools: Tools, checks: Checks, quick: bool):
    sizes = [1000] if quick else [10_000, 100_000, 1_000_000]
    rounds, target_ms, alternations = (3, 2, 1) if quick else (5, 40, 3)
    world = dptest.World("bss")
    results = {"memory": [], "scale": None, "template": template()}
    try:
        lma = Lma(world)
        for n in sizes:
            inst = lma.load(tools, f"m{n}", n)
            empty = map_memory(inst.pin_dir)
            largest = n == sizes[-1]
            timings = {}
            if largest:
                # 1 session vs N: a second LMA (same limit N, same programs) in its own namespace
                # holds 1 session; the two are timed in alternation, so load that comes and goes on
                # the machine hits both alike.
                log(f"sessions: 1 session in another LMA with maps sized for {n}")
                lma1 = Lma(world, "1")
                inst1 = lma1.load(tools, f"o{n}", n)
                lma1.fill(tools, inst1, 1)
                log(f"sessions: filling {n}")
                fills = [lma.fill(tools, inst, n)]
                for i in (inst1, inst):   # the next-hop cache, as the agent keeps it
                    i.refresh_next_hops()
                for _ in range(alternations):
                    for key, where, cases, refs in (("1", lma1, _cases("1"), 0),
                                                    ("n", lma, _cases("same") + _cases("spread", n) +
                                                     _reference_cases(n), n)):
                        by = _time(tools, where, cases, rounds, target_ms, ref_keys=refs)
                        agg = timings.setdefault(key, {})
                        for name, c in by.items():
                            a = agg.setdefault(name, {"rounds_ns": [], "net_rounds_ns": [], "mismatches": 0,
                                                      "runs": 0})
                            a["rounds_ns"] += c["rounds_ns"]
                            a["net_rounds_ns"] += [max(0.0, x - c["overhead_ns"]) for x in c["rounds_ns"]]
                            a["mismatches"] += c["mismatches"]
                            a["runs"] += c["runs"]
                            a["retval"], a["output"], a["median_ns"] = c["retval"], c["output"], c["median_ns"]
            else:
                log(f"sessions: filling {n}")
                fills = [lma.fill(tools, inst, n)]
            full = map_memory(inst.pin_dir)
            count = sum(f["count"] for f in fills)
            secs = sum(f["seconds"] for f in fills)
            total_empty = sum(m["bytes"] for m in empty.values())
            total_full = sum(m["bytes"] for m in full.values())
            # The per-CPU term: what per-CPU maps sized by the session count hold (must be 0).
            percpu = sum(m["bytes"] for m in full.values()
                         if "percpu" in (m.get("type") or "") and (m.get("max_entries") or 0) >= n)
            results["memory"].append({
                "sessions": n, "limit": n, "maps_empty_bytes": total_empty, "maps_full_bytes": total_full,
                "bytes_per_session": total_full / n, "added_bytes_per_session": (total_full - total_empty) / n,
                "per_map": {k: {"empty": empty.get(k, {}).get("bytes", 0), **v} for k, v in full.items()},
                "fill_seconds": secs, "fill_per_second": count / secs if secs else 0.0,
                "percpu_bytes_per_session": percpu / n, "cpus": os.cpu_count(),
                "fill_upsert_retries": sum(f.get("upsert_retries", 0) for f in fills)})
            checks.check(f"sessions.memory.{n}", count == n and total_full > total_empty > 0,
                         f"{count} sessions written, maps {total_empty} -> {total_full} bytes")
            if largest:
                rows = []
                for direction in ("uplink", "downlink"):
                    row = {"direction": direction}
                    for key, by, name in (("one", timings["1"], f"{direction}/1"),
                                          ("same", timings["n"], f"{direction}/same"),
                                          ("spread", timings["n"], f"{direction}/spread")):
                        c = by[name]
                        want_len = len(uplink_frames([0])[0]) - 28 if direction == "uplink" else \
                            len(downlink_frames([0])[0]) + 28
                        checks.check(f"sessions.per_packet.{name}",
                                     c["retval"] == dptest.XDP_REDIRECT and c["mismatches"] == 0 and
                                     len(bytes.fromhex(c["output"])) == want_len and c["median_ns"] > 0,
                                     f"verdict {c['retval']}, {c['mismatches']} of {c['runs']} runs took another "
                                     f"path, output {len(c['output']) // 2} octets (want {want_len})")
                        row[key] = median(c["net_rounds_ns"])
                        row[f"{key}_rounds_ns"] = c["net_rounds_ns"]
                    row["bare_xdp_tx_ns"] = median(timings["1"]["bare_xdp_tx"]["rounds_ns"])
                    rows.append(row)
                refs = {}
                for name, want_delta, base in (("encap", 28, downlink_frames([0])[0]),
                                               ("decap_hot", -28, uplink_frames([0])[0]),
                                               ("decap_cold", -28, uplink_frames([0])[0])):
                    c = timings["n"][f"ref/{name}"]
                    checks.check(f"sessions.reference.{name}",
                                 c["retval"] == dptest.XDP_TX and c["mismatches"] == 0 and
                                 len(bytes.fromhex(c["output"])) == len(base) + want_delta,
                                 f"verdict {c['retval']}, {c['mismatches']} of {c['runs']} runs took another path")
                    refs[name] = median(c["net_rounds_ns"])
                for r in rows:
                    r["spread_vs_cold_lookup"] = r["spread"] / refs["decap_cold"] if refs["decap_cold"] else None
                    ref = refs["decap_hot"] if r["direction"] == "uplink" else refs["encap"]
                    r["same_vs_minimal"] = r["same"] / ref if ref else None
                lat = run_json([tools.bench, "memlat", "--mib", "16" if quick else "256"])
                results["scale"] = {"sessions": n, "spread_sessions": n, "spread": "random over all sessions",
                                    "rows": rows, "cold_lookup_ns": refs["decap_cold"],
                                    "minimal_decap_ns": refs["decap_hot"], "minimal_encap_ns": refs["encap"],
                                    "memory_latency_ns": lat["ns_per_load"], "memory_latency_mib": lat["mib"]}
            inst.unload()
            world.instances.remove(inst)
        return results
    finally:
        world.close()
