"""Forwarding rate through veth and network namespaces.

    snd --veth-- MAG --veth-- LMA --veth-- snk
    s0           acc0  wan0   tun0  core0  k0

One MN flow per sender thread (UDP to port 9) from the MN's address to a correspondent, in five
set-ups built side by side and measured in turn, round by round:

  direct   snd --veth-- snk: the generator and the sink alone (the ceiling of this rig)
  routing  plain kernel IPv4 forwarding at MAG and LMA
  redirect a bare XDP forwarder at MAG and LMA (bench_forward.bpf.c: set the MACs, XDP_REDIRECT to
           the next interface, nothing looked up): the reference xpmip is held to
  vxlan    the kernel's VXLAN tunnel between MAG and LMA (this kernel has no GRE driver)
  xpmip    xpmip's XDP programs: GRE with keys over IPv4, MAG encapsulates, LMA decapsulates


"One MAG-LMA pair" (issue 15), its own rig: the generator plays a MAG, one thread on CPU 0
sending GRE-keyed packets of 64 inner flows (inner source ports varied by the generator) straight
into the LMA's tunnel interface; a veth runs the receive path on the sending CPU, as a NIC's RSS
puts a whole tunnel on one queue. The LMA decapsulates to the sink

    mag --veth-- LMA --veth-- snk
    s0           tun0  core0  k0

on CPU 0 alone (spread_cpus none), or spreading over CPUs 0 and 1 (0,1: half the flows handed
to CPU 1), or handing every flow to CPU 1 (1: CPU 0 only receives). The best spread rate over
the one-CPU rate is what the second core adds.

Two generators, both `xpmip-bench send`, one thread pinned per core:
  xdp       BPF_PROG_TEST_RUN in live-frame mode (xdp-trafficgen's mechanism): frames leave s0
            as xdp_frames and reach acc0's XDP ring without an skb, as from a NIC driver. A veth
            takes such frames only when it runs an XDP program: the kernel set-ups get XDP_PASS
            on acc0 (the kernel then builds the skb around the frame's page).
  afpacket  AF_PACKET TX ring with qdisc bypass: skbs, as from a local application (a veth then
            runs XDP on a copy of the skb: xpmip pays that copy at acc0).
The sink is bench_sink.bpf.c on k0, counting only plain UDP-to-port-9 packets, so a tunnel
packet that was not decapsulated does not count; the rate is what it counted while the sender
ran, over the sender's own duration. On veth the whole chain runs in softirq on the CPU that
sent the packet: "one core" is one sender thread on CPU 0 doing everything, "two cores" two
threads on CPUs 0 and 1 over two-queue veths. The generator's own cost is in every figure (the
"direct" row is it alone).
"""
import os

from common import Checks, Tools, dptest, enter, log, median, run_json

from scapy.all import GRE, IP, UDP, Ether, Raw, raw  # noqa: E402

MN_MAC, ACC0_MAC = "02:00:00:00:01:07", "02:00:00:00:ac:01"
WAN0_MAC, TUN0_MAC = "02:00:00:00:0b:02", "02:00:00:00:0a:01"
CORE0_MAC, SINK_MAC = "02:00:00:00:c0:01", "02:00:00:00:c0:10"
VX_MAG_MAC, VX_LMA_MAC = "02:00:00:00:99:01", "02:00:00:00:99:02"
HOA, CN, CN_NET = "10.0.1.7", "198.51.100.20", "198.51.100.0/24"
MAG4, LMA4, CORE0_4, SINK4 = "203.0.113.2", "203.0.113.1", "192.0.2.1", "192.0.2.10"
KEY_UL, KEY_DL = 0x0A0B0001, 0xD0D00001
SINK_PORT = 9

VARIANTS = ["direct", "routing", "redirect", "vxlan", "xpmip"]
PAIR_FLOWS = 64
# The 32-bit field that ends with the inner UDP source port: Ethernet, outer IPv4, GRE with key,
# inner IPv4 (the low half of its destination, unchanged while the port does not wrap).
PAIR_VARY_OFFSET = 14 + 20 + 8 + 20 - 2
PAIR_SPREADS = ["none", "0,1", "1"]
LABELS = {"direct": "generator to sink, no forwarding", "routing": "kernel IPv4 routing",
          "redirect": "bare XDP_REDIRECT forwarder (reference)",
          "vxlan": "kernel VXLAN tunnel", "xpmip": "xpmip XDP, GRE key over IPv4"}


def frame(size, sport):
    """An MN's UDP packet to a correspondent, `size` octets from the Ethernet header on (no FCS).
    No UDP checksum (IPv4 allows it), so a generator varying the source port keeps it valid."""
    head = Ether(src=MN_MAC, dst=ACC0_MAC) / IP(src=HOA, dst=CN, ttl=64, flags="DF") / UDP(sport=sport,
                                                                                           dport=SINK_PORT, chksum=0)
    f = raw(head / Raw(b"\x00" * (size - len(raw(head)))))
    assert len(f) == size, (len(f), size)
    return f


def _veth(a, a_name, b, b_name, a_mac, b_mac):
    """A veth pair with two queues each way (two cores use both)."""
    dptest.sh("ip", "link", "add", a_name, "numtxqueues", "2", "numrxqueues", "2", "netns", a.name, "type", "veth",
              "peer", "name", b_name, "numtxqueues", "2", "numrxqueues", "2", "netns", b.name)
    for ns, name, mac in ((a, a_name, a_mac), (b, b_name, b_mac)):
        ns.ip(f"link set {name} address {mac}")
        ns.ip(f"link set {name} up")


def _lma_toward_sink(lma, snk):
    """The LMA's addresses and static neighbours, its route to the correspondents via the sink."""
    for c in (f"addr add {LMA4}/24 dev tun0", f"addr add {CORE0_4}/24 dev core0",
              f"neigh replace {MAG4} lladdr {WAN0_MAC} dev tun0 nud permanent",
              f"neigh replace {SINK4} lladdr {SINK_MAC} dev core0 nud permanent",
              f"route add {CN_NET} via {SINK4} dev core0"):
        lma.ip(c)
    snk.ip(f"addr add {SINK4}/24 dev k0")


def _cpu_times():
    """Per-CPU jiffies from /proc/stat: user, nice, system, idle, iowait, irq, softirq, steal."""
    out = []
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3] != " ":
                out.append([int(x) for x in line.split()[1:9]])
    return out


class Rig:
    def __init__(self, world, tools, variant):
        self.variant = variant
        self.tools = tools
        self.instances = []
        w = world
        self.snd = w.netns(f"{variant[:3]}-snd")
        self.snk = w.netns(f"{variant[:3]}-snk")
        for ns in (self.snd, self.snk):
            ns.quiet()
        if variant == "direct":
            _veth(self.snd, "s0", self.snk, "k0", MN_MAC, ACC0_MAC)
        else:
            self.mag = w.netns(f"{variant[:3]}-mag")
            self.lma = w.netns(f"{variant[:3]}-lma")
            _veth(self.snd, "s0", self.mag, "acc0", MN_MAC, ACC0_MAC)
            _veth(self.mag, "wan0", self.lma, "tun0", WAN0_MAC, TUN0_MAC)
            _veth(self.lma, "core0", self.snk, "k0", CORE0_MAC, SINK_MAC)
            for ns in (self.mag, self.lma):
                ns.forwarding()
                ns.sysctl("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
            for c in ("addr add 10.0.1.1/24 dev acc0", f"addr add {MAG4}/24 dev wan0",
                      f"neigh replace {LMA4} lladdr {TUN0_MAC} dev wan0 nud permanent"):
                self.mag.ip(c)
            _lma_toward_sink(self.lma, self.snk)
            getattr(self, f"_{variant}")(w)
        self.snd.run("ethtool", "-K", "s0", "tx", "off")
        self.snk.run("ip", "link", "set", "dev", "k0", "xdpdrv", "obj", tools.sink_obj, "sec", "xdp")

    def _routing(self, w):
        self.mag.ip(f"route add {CN_NET} via {LMA4} dev wan0")

    def _redirect(self, w):
        self.mag.run(self.tools.bench, "forward", "acc0", "--to", "wan0", "--dmac", TUN0_MAC)
        self.lma.run(self.tools.bench, "forward", "tun0", "--to", "core0", "--dmac", SINK_MAC)

    def _vxlan(self, w):
        for ns, local, remote, dev, mac, addr in ((self.mag, MAG4, LMA4, "wan0", VX_MAG_MAC, "10.99.0.1/30"),
                                                  (self.lma, LMA4, MAG4, "tun0", VX_LMA_MAC, "10.99.0.2/30")):
            ns.ip(f"link add vx0 type vxlan id 42 local {local} remote {remote} dstport 4789 dev {dev}")
            ns.ip(f"link set vx0 address {mac}")
            ns.ip("link set vx0 up")
            ns.ip(f"addr add {addr} dev vx0")
        self.mag.ip(f"neigh replace 10.99.0.2 lladdr {VX_LMA_MAC} dev vx0 nud permanent")
        self.mag.ip(f"route add {CN_NET} via 10.99.0.2 dev vx0")

    def _xpmip(self, w):
        session = {"id": 1, "encap": "gre", "gre_keys": True, "realm": 1, "hoa": HOA, "mn_mac": MN_MAC}
        self.mag_dp = w.instance(self.mag, "fmag", "mag", ["wan0:tunnel", "acc0:access"])
        self.mag_dp.add_session({**session, "mn_interface": "acc0", "paths": [
            {"local": MAG4, "remote": LMA4, "key_downlink": KEY_DL, "key_uplink": KEY_UL}]})
        self.lma_dp = w.instance(self.lma, "flma", "lma", ["tun0:tunnel", "core0:core:1"])
        self.lma_dp.add_session({**session, "mn_interface": "core0", "paths": [
            {"local": LMA4, "remote": MAG4, "key_downlink": KEY_DL, "key_uplink": KEY_UL}]})
        for dp in (self.mag_dp, self.lma_dp):   # as the agents do
            dp.refresh_next_hops()

    def use_generator(self, generator):
        """xdp: frames arrive at acc0 as xdp_frames, which a veth takes only when it runs an XDP
        program: the kernel set-ups get XDP_PASS there (xpmip has its own). afpacket: none."""
        if self.variant in ("routing", "vxlan") and getattr(self, "generator", None) != generator:
            if generator == "xdp":
                self.mag.run("ip", "link", "set", "dev", "acc0", "xdpdrv", "obj", self.tools.xdp_pass_obj, "sec", "xdp")
            else:
                self.mag.run("ip", "link", "set", "dev", "acc0", "xdpdrv", "off")
        self.generator = generator

    def sink_totals(self):
        c = run_json(enter(self.snk, self.tools.bench, "count", "k0", "--seconds", "0"))
        return c["total_matched"], c["total_all"]

    def measure(self, world, size, cores, seconds, generator="xdp"):
        """Packets per second delivered to the sink while the generator ran: the sink's totals
        read before and after the sender, over the sender's own measured duration (so nothing
        depends on when a reader process gets scheduled on the busy CPUs)."""
        self.use_generator(generator)
        frames = [frame(size, 10000 + i) for i in range(cores)]
        args = [self.tools.bench, "send", "--generator", generator, "--interface", "s0",
                "--cpus", ",".join(str(c) for c in range(cores)), "--seconds", f"{seconds}"]
        for f in frames:
            args += ["--frame", f.hex()]
        matched0, all0 = self.sink_totals()
        before = _cpu_times()
        sent = run_json(enter(self.snd, *args), timeout=seconds + 60)
        after = _cpu_times()
        matched1, all1 = self.sink_totals()
        # Time other work on the machine took from the benchmark's CPUs: user time on them, less
        # the generator's own (the machine is shared; softirq work lands on whoever runs).
        hz = os.sysconf("SC_CLK_TCK")
        total = sum(sum(after[c]) - sum(before[c]) for c in range(cores)) / hz
        user = sum((after[c][0] + after[c][1]) - (before[c][0] + before[c][1]) for c in range(cores)) / hz
        others = max(0.0, user - sent.get("user_cpu_s", 0.0)) / total if total else 0.0
        secs = sent["seconds"]
        return {"rx_pps": (matched1 - matched0) / secs, "sink_all_pps": (all1 - all0) / secs, "tx_pps": sent["pps"],
                "others_share": others}


class PairRig:
    """A MAG's tunnel into one LMA (see the module's doc): the sender is the MAG."""

    def __init__(self, world, tools):
        self.tools = tools
        self.snd, self.lma, self.snk = (world.netns(f"pair-{n}") for n in ("mag", "lma", "snk"))
        for ns in (self.snd, self.snk):
            ns.quiet()
        _veth(self.snd, "s0", self.lma, "tun0", WAN0_MAC, TUN0_MAC)
        _veth(self.lma, "core0", self.snk, "k0", CORE0_MAC, SINK_MAC)
        self.lma.forwarding()
        _lma_toward_sink(self.lma, self.snk)
        self.snd.run("ethtool", "-K", "s0", "tx", "off")
        self.snk.run("ip", "link", "set", "dev", "k0", "xdpdrv", "obj", tools.sink_obj, "sec", "xdp")
        self.lma_dp = world.instance(self.lma, "plma", "lma", ["tun0:tunnel", "core0:core:1"])
        self.lma_dp.add_session({"id": 1, "encap": "gre", "gre_keys": True, "realm": 1, "hoa": HOA,
                                 "mn_interface": "core0", "paths": [
                                     {"local": LMA4, "remote": MAG4, "key_downlink": KEY_DL, "key_uplink": KEY_UL}]})
        inner = frame(64, 10000)[14:]
        self.frame = raw(Ether(src=WAN0_MAC, dst=TUN0_MAC) / IP(src=MAG4, dst=LMA4, ttl=64, flags="DF", id=0) /
                         GRE(key_present=1, key=KEY_UL, proto=0x0800) / Raw(inner))

    def sink_count(self):
        return run_json(enter(self.snk, self.tools.bench, "count", "k0", "--seconds", "0"))["total_matched"]

    def measure(self, seconds, spread):
        self.lma_dp.reload(None if spread == "none" else spread)
        self.lma_dp.stats(reset=True)
        sent = run_json(enter(self.snd, self.tools.bench, "send", "--generator", "xdp", "--interface", "s0",
                              "--cpus", "0", "--seconds", f"{seconds}", "--frame", self.frame.hex(),
                              "--vary-offset", str(PAIR_VARY_OFFSET), "--vary-count", str(PAIR_FLOWS)),
                        timeout=seconds + 60)
        c = self.lma_dp.nonzero_stats(reset=True)
        up = ((self.lma_dp.session(1) or {}).get("counters") or {}).get("uplink", {}).get("packets", 0)
        return sent, c, up


def measure_pair(world, tools, checks, reps, seconds):
    """One MAG-LMA pair from one receiving CPU: the LMA on that CPU alone against the LMA
    spreading (paired by round, as the other ratios)."""
    rig = PairRig(world, tools)
    rates = {s: [] for s in PAIR_SPREADS}
    stats = {}
    for _ in range(reps):
        for spread in PAIR_SPREADS:
            before = rig.sink_count()
            sent, stats[spread], _ = rig.measure(seconds, spread)
            rates[spread].append((rig.sink_count() - before) / sent["seconds"])
    best = max(PAIR_SPREADS[1:], key=lambda s: median(rates[s]))
    ratios = [b / a for a, b in zip(rates["none"], rates[best]) if a]
    for spread in PAIR_SPREADS[1:]:
        st = stats[spread]
        # A CPU given more than it can take drops at its cpumap queue (handed on, never taken):
        # reported, since overloading is what a benchmark does.
        st["cpumap_dropped"] = st.get("cpu_spread", 0) - st.get("spread_received", 0)
        checks.check(f"forwarding.pair.spread_{spread.replace(',', '_')}",
                     st.get("cpu_spread", 0) > 0 and st.get("spread_received", 0) > 0 and min(rates[spread]) > 0,
                     f"spread_cpus {spread}: the LMA handed {st.get('cpu_spread', 0)} packets on "
                     f"({st.get('spread_received', 0)} taken); {median(rates[spread]):.0f} packets/s delivered")
    return {"flows": PAIR_FLOWS, "size": 64, "rates": {s: median(v) for s, v in rates.items()},
            "samples": rates, "best": best, "one_cpu_pps": median(rates["none"]), "two_cpus_pps": median(rates[best]),
            "ratio": median(ratios), "ratio_samples": ratios, "lma_stats": stats}


GENERATORS = {"xdp": "XDP generator: xdp_frames, no skb (live-frame BPF_PROG_TEST_RUN)",
              "afpacket": "AF_PACKET generator: skbs (TX ring, qdisc bypass)"}


def run(tools: Tools, checks: Checks, quick: bool, reps=None):
    sizes, core_counts = ([64], [1]) if quick else ([64, 1400], [1, 2])
    reps = reps or (1 if quick else 5)
    seconds = 0.5 if quick else 2.0
    world = dptest.World("bfw")
    try:
        log("forwarding: building " + ", ".join(VARIANTS))
        rigs = {v: Rig(world, tools, v) for v in VARIANTS}
        samples = {}
        for rep in range(reps):
            for gen in GENERATORS:
                for size in sizes:
                    for cores in core_counts:
                        for v in VARIANTS:
                            m = rigs[v].measure(world, size, cores, seconds, generator=gen)
                            samples.setdefault((gen, v, size, cores), []).append(m)
            log(f"forwarding: round {rep + 1}/{reps} done")
        rows = []
        for (gen, v, size, cores), ms in samples.items():
            rx = [m["rx_pps"] for m in ms]
            base = [m["rx_pps"] for m in samples[(gen, "routing", size, cores)]]
            # Paired: each round's ratio to routing measured seconds apart, then the median, so
            # load that comes and goes on the shared machine cancels more than in a ratio of medians.
            ratios = [a / b for a, b in zip(rx, base) if b]
            redirect = [m["rx_pps"] for m in samples[(gen, "redirect", size, cores)]]
            vs_redirect = [a / b for a, b in zip(rx, redirect) if b]
            rows.append({"generator": gen, "variant": v, "label": LABELS[v], "size": size, "cores": cores,
                         "rx_pps": median(rx), "rx_pps_samples": rx, "tx_pps": median([m["tx_pps"] for m in ms]),
                         "sink_all_pps": median([m["sink_all_pps"] for m in ms]),
                         "vs_routing": median(ratios), "vs_routing_samples": ratios,
                         "vs_redirect": median(vs_redirect), "vs_redirect_samples": vs_redirect,
                         "others_share": median([m["others_share"] for m in ms])})
        for r in rows:
            checks.check(f"forwarding.{r['generator']}.{r['variant']}.{r['size']}B.{r['cores']}core",
                         r["rx_pps"] > 0 and min(r["rx_pps_samples"]) > 0,
                         f"{r['rx_pps']:.0f} packets/s delivered (of {r['tx_pps']:.0f} sent); "
                         f"{r['sink_all_pps']:.0f}/s of anything at the sink")
        pair = measure_pair(world, tools, checks, reps, seconds)
        x = rigs["xpmip"]
        mag_s, lma_s = x.mag_dp.session(1) or {}, x.lma_dp.session(1) or {}
        info = {"mag_stats": x.mag_dp.nonzero_stats(reset=False), "lma_stats": x.lma_dp.nonzero_stats(reset=False),
                "mag_session_counters": mag_s.get("counters"), "lma_session_counters": lma_s.get("counters")}
        up = ((mag_s.get("counters") or {}).get("uplink") or {}).get("packets", 0)
        checks.check("forwarding.xpmip.session_counted", up > 0,
                     f"MAG session 1 uplink packets {up}; drops MAG {info['mag_stats']} LMA {info['lma_stats']}")
        return {"reps": reps, "seconds": seconds, "rows": rows, "xpmip_counters": info, "pair": pair,
                "generators": GENERATORS, "others_share": median([r["others_share"] for r in rows])}
    finally:
        world.close()
