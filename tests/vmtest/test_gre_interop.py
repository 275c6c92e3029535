#!/usr/bin/env python3
"""Interoperability with an independent GRE implementation: the kernel's keyed `gre`, `ip6gre`,
`gretap` and `ip6gretap` devices (ikey/okey) at the other end of our data plane's tunnels.

Our LMA with the kernel as the MAG, and our MAG with the kernel as the LMA:

    ns kmag [kt: kernel GRE, the MN's address] --wan0== tun0-- LMA (ours) --coreA-- cn (203.0.113.10)
                                                                          \\--corel2-- st (10.20.0.1, L2 segment)

    ns mn (10.0.0.7, 10.20.0.7) --acc0-- MAG (ours) --wan0== tun0-- klma [kt: kernel GRE; CN 203.0.113.10 on lo]

In PMIPv6 the MAG assigns the downlink key (LMA->MAG packets carry it) and the LMA the uplink key
(RFC 5845 §3.3): the kernel MAG's device has ikey = downlink, okey = uplink; the kernel LMA's the
reverse. For each format: ping (IPv4 and IPv6 inside), a TCP download checked octet for octet and
a UDP echo, both ways through our XDP; our session's counters and the kernel device's counters
show that both implementations carried them. A wrong key must not pass, whichever side expects
it: the kernel sending a key we did not assign is dropped and counted (drop_unknown_key); our
packets with a key the kernel does not expect are not taken by its device.

The kernel's device is created anew for each case (fresh keys each time), our session rewritten.
The kernel's ip6gre/ip6gretap add a Tunnel Encapsulation Limit destination option by default
(RFC 2473 §5.1): the main cases keep that default (our decapsulation skips IPv6 extension headers
by their length), and ip6gre_encaplimit_none covers GRE right after the IPv6 header.

Run as root in a kernel with ip_gre/ip6_gre (tests/vmtest/suite); XPMIP_DP names the xpmip-dp tool.
"""
import json
import os
import select
import subprocess
import sys
import unittest
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dataplane"))
import dptest  # noqa: E402
from dptest import World  # noqa: E402

PY = "/usr/bin/python3"
TCP_PEER = os.path.join(HERE, "..", "dataplane", "tcp_peer.py")
PEER = os.path.join(HERE, "peer.py")

LMA4, MAG4 = "192.0.2.1", "192.0.2.10"
LMA6, MAG6 = "2001:db8:100::1", "2001:db8:100::10"
MN_MAC = "02:00:00:00:0a:07"
KLMA_MAC = "02:00:00:00:1a:01"         # the kernel LMA's gretap device (the L2 segment's router)
# L3 service: the MN's home address and prefix, its gateway on our MAG, the correspondent.
HOA, HNP, MN6 = "10.0.0.7", "2001:db8:a:1::/64", "2001:db8:a:1::7"
GW4, GW6 = "10.0.0.1", "2001:db8:a:1::1"
CN4, CN6 = "203.0.113.10", "2001:db8:ca::10"
CORE4, CORE6 = "203.0.113.1", "2001:db8:ca::1"
# L2 service: one Ethernet segment stretched through the tunnel.
L2_MN4, L2_MN6 = "10.20.0.7", "2001:db8:e::7"
L2_CN4, L2_CN6 = "10.20.0.1", "2001:db8:e::1"
TCP_PORT, UDP_PORT = 7000, 7001
TCP_SIZE = 256 * 1024
PINGS = 3
# Drops that mean "the two implementations disagree on the format": none may happen in a good case.
# (drop_inner_spoof is not among them: the kernel's devices send IPv6 router solicitations and MLD
# reports from link-local addresses into the tunnel, which our data plane rightly refuses.)
FORMAT_DROPS = ("drop_no_session", "drop_unknown_key", "drop_malformed", "drop_gre_header", "drop_gre_protocol",
                "drop_encap_mismatch", "drop_outer_spoof", "drop_fragment")


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str              # the kernel's link type
    outer: int             # 4 or 6
    l2: bool               # Ethernet in GRE (0x6558): our L2 session
    opts: tuple = ()       # more `ip link add ... type KIND` options for the kernel's device


VARIANTS = [
    Variant("gre_ipv4", "gre", 4, False),
    # The kernel puts a checksum and a sequence number in what it sends (C and S, RFC 2784/2890).
    Variant("gre_ipv4_csum_seq", "gre", 4, False, ("ocsum", "oseq")),
    # The kernel's defaults: its ip6gre/ip6gretap put a Tunnel Encapsulation Limit destination
    # option (RFC 2473 §5.1) between the IPv6 header and GRE, which our decapsulation skips.
    Variant("ip6gre", "ip6gre", 6, False),
    Variant("gretap_ipv4", "gretap", 4, True),
    Variant("ip6gretap", "ip6gretap", 6, True),
    Variant("ip6gre_encaplimit_none", "ip6gre", 6, False, ("encaplimit", "none")),
]


def ipn(ns, args, check=True):
    """`ip -n NS ...`: cheaper than `ip netns exec` (no mount namespace), which counts under TCG."""
    return dptest.sh("ip", "-n", ns.name, *(args.split() if isinstance(args, str) else args), check=check)


def read_line(p, timeout):
    """One line from a helper's stdout, waiting at most `timeout` seconds ("" if none)."""
    if select.select([p.stdout], [], [], timeout)[0]:
        return p.stdout.readline().strip()
    return ""


def counter(c, *path):
    for p in path:
        c = c[p]
    return c


class KernelGreInterop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not dptest.TOOL:
            raise unittest.SkipTest("XPMIP_DP is not set")  # the suite always sets it
        w = cls.world = World("vg")
        try:
            cls.build(w)
        except Exception:
            w.close()
            raise
        cls.keyseq = 0

    @classmethod
    def build(cls, w):
        ns = cls.ns = {n: w.netns(n) for n in ("lma", "kmag", "cn", "st", "mag", "klma", "mn")}
        lma, kmag, cn, st, mag, klma, mn = (ns[n] for n in ("lma", "kmag", "cn", "st", "mag", "klma", "mn"))
        w.veth(lma, "tun0", kmag, "wan0")
        w.veth(lma, "coreA", cn, "eth0")
        w.veth(lma, "corel2", st, "eth0")
        w.veth(mag, "wan0", klma, "tun0")
        w.veth(mag, "acc0", mn, "eth0", b_mac=MN_MAC)
        for n, dev in ((kmag, "wan0"), (cn, "eth0"), (st, "eth0"), (klma, "tun0"), (mn, "eth0")):
            n.end_host(dev)
        for n, dev, a4, a6 in ((lma, "tun0", LMA4, LMA6), (kmag, "wan0", MAG4, MAG6),
                               (mag, "wan0", MAG4, MAG6), (klma, "tun0", LMA4, LMA6)):
            ipn(n, f"addr add {a4}/24 dev {dev}")
            ipn(n, f"-6 addr add {a6}/64 dev {dev} nodad")
        ipn(lma, f"addr add {CORE4}/24 dev coreA")
        ipn(lma, f"-6 addr add {CORE6}/64 dev coreA nodad")
        ipn(cn, f"addr add {CN4}/24 dev eth0")
        ipn(cn, f"-6 addr add {CN6}/64 dev eth0 nodad")
        ipn(cn, f"route add default via {CORE4}")
        ipn(cn, f"-6 route add default via {CORE6}")
        ipn(st, f"addr add {L2_CN4}/24 dev eth0")
        ipn(st, f"-6 addr add {L2_CN6}/64 dev eth0 nodad")
        ipn(mag, f"addr add {GW4}/24 dev acc0")
        ipn(mag, f"-6 addr add {GW6}/64 dev acc0 nodad")
        ipn(mn, f"addr add {HOA}/24 dev eth0")
        ipn(mn, f"-6 addr add {MN6}/64 dev eth0 nodad")
        ipn(mn, f"addr add {L2_MN4}/24 dev eth0")
        ipn(mn, f"-6 addr add {L2_MN6}/64 dev eth0 nodad")
        # With its L2 addresses alongside, the MN must pick its HoA/HNP address toward the
        # correspondent (our MAG rightly drops anything else as spoofed).
        ipn(mn, f"route add default via {GW4} src {HOA}")
        ipn(mn, f"-6 route add default via {GW6} src {MN6}")
        # The kernel LMA is the correspondent itself; its L2 addresses exist only while a gretap
        # device holds them, so its servers bind before they do.
        ipn(klma, f"addr add {CN4}/32 dev lo")
        ipn(klma, f"-6 addr add {CN6}/128 dev lo")
        klma.sysctl("net.ipv4.ip_nonlocal_bind=1", "net.ipv6.ip_nonlocal_bind=1")
        lma.forwarding()
        mag.forwarding()
        cls.lma = w.instance(lma, "lma", "lma", ["tun0:tunnel", "coreA:core:1", "corel2:core-l2:1"])
        cls.mag = w.instance(mag, "mag", "mag", ["wan0:tunnel", "acc0:access"])
        # Servers, and one client process per client namespace (Python starts slowly under TCG:
        # all start at once, then each must say "ready").
        started = []
        for n, name, addrs in ((cn, "cn", (CN4, CN6)), (st, "station", (L2_CN4, L2_CN6)),
                               (klma, "klma", (CN4, CN6, L2_CN4, L2_CN6))):
            for a in addrs:
                for cmd in ([PY, TCP_PEER, "serve", a, str(TCP_PORT), name, str(TCP_SIZE)],
                            [PY, PEER, "udp-serve", a, str(UDP_PORT)]):
                    started.append((n, cmd, n.popen(*cmd, stdout=subprocess.PIPE, text=True)))
        cls.clients = {}
        for n in (kmag, mn):
            cmd = [PY, PEER, "client"]
            p = cls.clients[n.name] = n.popen(*cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            started.append((n, cmd, p))
        for n, cmd, p in started:
            line = read_line(p, 120)
            if line != "ready":
                raise RuntimeError(f"{' '.join(cmd)} in {n.name} did not start: {line!r}")

    @classmethod
    def tearDownClass(cls):
        cls.world.close()

    # -- one case: the kernel's device and our session ------------------------------------------

    def setup_case(self, side, v, kernel_sends_wrong_key=False, kernel_expects_wrong_key=False):
        """Create the kernel's device and our session for one case; returns a dict describing it.
        side "lma": ours is the LMA, the kernel the MAG; side "mag": the reverse."""
        type(self).keyseq += 1
        kd = 0xD0D00000 | self.keyseq       # downlink (LMA -> MAG), the MAG's choice
        ku = 0x0A0B0000 | self.keyseq       # uplink (MAG -> LMA), the LMA's choice
        wrong = 0x00EE0000
        ours = self.lma if side == "lma" else self.mag
        kns = self.ns["kmag" if side == "lma" else "klma"]
        lma_addr, mag_addr = (LMA4, MAG4) if v.outer == 4 else (LMA6, MAG6)
        if side == "lma":   # the kernel is the MAG: it takes downlink packets and sends uplink ones
            local, remote, ikey, okey = mag_addr, lma_addr, kd, ku
        else:
            local, remote, ikey, okey = lma_addr, mag_addr, ku, kd
        if kernel_expects_wrong_key:
            ikey ^= wrong
        if kernel_sends_wrong_key:
            okey ^= wrong

        sess = dict(id=1, encap="gre", gre_keys=True, realm=1, l2=v.l2,
                    paths=[dict(local=lma_addr if side == "lma" else mag_addr,
                                remote=mag_addr if side == "lma" else lma_addr,
                                key_downlink=kd, key_uplink=ku)])
        if not v.l2:
            sess.update(hoa=HOA, hnp=HNP)
        if side == "lma":
            sess["mn_interface"] = "corel2" if v.l2 else "coreA"
            if v.l2:
                sess["mn_mac"] = MN_MAC
        else:
            sess.update(mn_interface="acc0", mn_mac=MN_MAC)
        ours.add_session(sess)   # adds or replaces
        self.addCleanup(ours.del_session, 1)

        self.addCleanup(self.remove_kernel_device, kns)
        cmds = [f"link add kt type {v.kind} local {local} remote {remote} ikey {ikey} okey {okey} {' '.join(v.opts)}"]
        if v.l2:
            cmds.append(f"link set kt address {MN_MAC if side == 'lma' else KLMA_MAC}")
        cmds.append("link set kt up")
        if side == "lma":   # the kernel MAG is the MN
            if v.l2:
                cmds += [f"addr add {L2_MN4}/24 dev kt", f"addr add {L2_MN6}/64 dev kt nodad"]
            else:
                cmds += [f"addr add {HOA}/32 dev kt", f"addr add {MN6}/128 dev kt nodad",
                         f"route add 203.0.113.0/24 dev kt src {HOA}", f"route add 2001:db8:ca::/64 dev kt src {MN6}"]
        else:               # the kernel LMA is the correspondent (and the L2 segment's router)
            if v.l2:
                cmds += [f"addr add {L2_CN4}/24 dev kt", f"addr add {L2_CN6}/64 dev kt nodad"]
            else:
                cmds += [f"route add {HOA}/32 dev kt", f"route add {HNP} dev kt"]
        dptest.sh("ip", "-n", kns.name, "-batch", "-", input="\n".join(cmds) + "\n")
        ours.stats(reset=True)
        return dict(ours=ours, kns=kns, mn=kns if side == "lma" else self.ns["mn"],
                    cn4=L2_CN4 if v.l2 else CN4, cn6=L2_CN6 if v.l2 else CN6,
                    server=("station" if side == "lma" else "klma") if v.l2 else ("cn" if side == "lma" else "klma"))

    def remove_kernel_device(self, kns):
        ipn(kns, "link del kt", check=False)
        # No neighbour entries (resolved or failed) through the tunnel into the next case.
        for n in (kns, self.ns["mn"], self.ns["st"]):
            ipn(n, "neigh flush all")

    # -- measurements ---------------------------------------------------------------------------

    def kernel_stats(self, kns):
        link = json.loads(ipn(kns, "-j -s link show dev kt").stdout)[0]
        return {d: link["stats64"][d]["packets"] for d in ("rx", "tx")}

    def session_counters(self, ours):
        s = ours.session(1)
        self.assertIsNotNone(s, "our session is gone")
        c = s["counters"]
        return dict(uplink=counter(c, "uplink", "packets"), downlink=counter(c, "downlink", "packets"),
                    tx=counter(c, "paths", 0, "tx", "packets"), rx=counter(c, "paths", 0, "rx", "packets"))

    def ask(self, client, command, timeout=90):
        client.stdin.write(command + "\n")
        client.stdin.flush()
        return read_line(client, timeout) or f"(no answer in {timeout} s)"

    def ping(self, case, six, count=PINGS, wait=2):
        # nsenter: cheaper than `ip netns exec` under TCG, and ping needs no /sys of its own.
        return case["mn"].enter("ping", "-6" if six else "-4", "-c", str(count), "-i", "0.2", "-W", str(wait),
                                case["cn6"] if six else case["cn4"], check=False, timeout=30 + 3 * count)

    # -- the cases ------------------------------------------------------------------------------

    def check_traffic(self, side, v):
        case = self.setup_case(side, v)
        mn, ours, kns = case["mn"], case["ours"], case["kns"]
        for six in (False, True):
            r = self.ping(case, six)
            self.assertEqual(r.returncode, 0, f"ping -{6 if six else 4}:\n{r.stdout}{r.stderr}")
            self.assertIn(f"{PINGS} received", r.stdout)
        client = self.clients[mn.name]
        for addr in (case["cn4"], case["cn6"]):
            self.assertEqual(self.ask(client, f"tcp {addr} {TCP_PORT} {TCP_SIZE}").split(),
                             [case["server"], "intact", str(TCP_SIZE)], f"TCP download from {addr}")
            self.assertEqual(self.ask(client, f"udp {addr} {UDP_PORT} 5"), "5/5 echoed", f"UDP echo with {addr}")
        ctr, kst, st = self.session_counters(ours), self.kernel_stats(kns), ours.nonzero_stats()
        print(f"\n  {side}/{v.name}: ours {ctr}, kernel device {kst}, counters {st}", file=sys.stderr)
        # Each way, through both implementations, at least: 2 x PINGS echoes, 2 x 5 UDP datagrams,
        # and 4 packets of each TCP download (handshake, FIN, ACKs, data). No more can be promised:
        # GRO merges what the receiving side ACKs, and the kernel counts GSO bursts as one packet.
        least = 2 * PINGS + 2 * 5 + 2 * 4
        for k in ("uplink", "downlink", "rx", "tx"):
            self.assertGreaterEqual(ctr[k], least, f"our session's {k} packets: {ctr}")
        self.assertGreaterEqual(kst["rx"], least, f"the kernel's {v.kind} device took too little: {kst}")
        self.assertGreaterEqual(kst["tx"], least, f"the kernel's {v.kind} device sent too little: {kst}")
        self.assertEqual({k: n for k, n in st.items() if k in FORMAT_DROPS}, {}, "format drops")

    def check_kernel_sends_wrong_key(self, side, v):
        case = self.setup_case(side, v, kernel_sends_wrong_key=True)
        before = self.session_counters(case["ours"])
        r = self.ping(case, six=False, wait=1)
        self.assertNotEqual(r.returncode, 0, f"ping passed with a wrong key from the kernel:\n{r.stdout}")
        st, after = case["ours"].nonzero_stats(), self.session_counters(case["ours"])
        # L3: every echo (request at our LMA, reply at our MAG) has the wrong key. L2: at least
        # the ARP exchange does.
        self.assertGreaterEqual(st.get("drop_unknown_key", 0), 1 if v.l2 else PINGS, st)
        self.assertEqual(after["rx"], before["rx"], "a packet with the wrong key was decapsulated")

    def check_kernel_expects_wrong_key(self, side, v):
        case = self.setup_case(side, v, kernel_expects_wrong_key=True)
        before = self.session_counters(case["ours"])
        r = self.ping(case, six=False, wait=1)
        self.assertNotEqual(r.returncode, 0, f"ping passed though the kernel expects another key:\n{r.stdout}")
        after, kst = self.session_counters(case["ours"]), self.kernel_stats(case["kns"])
        # We did send (so the kernel saw our key and refused it): L3 every echo, L2 ARP at least.
        self.assertGreaterEqual(after["tx"] - before["tx"], 1 if v.l2 else PINGS, after)
        self.assertEqual(kst["rx"], 0, f"the kernel's device took packets with our key: {kst}")


def _add(name, fn, doc):
    fn.__name__ = name
    fn.__doc__ = doc
    setattr(KernelGreInterop, name, fn)


for _side, _who in (("lma", "our LMA, the kernel's MAG"), ("mag", "our MAG, the kernel's LMA")):
    for _v in VARIANTS:
        _what = f"{_v.kind} {' '.join(_v.opts)}".strip()
        _add(f"test_{_side}_{_v.name}", lambda self, s=_side, v=_v: self.check_traffic(s, v),
             f"{_who}, {_what}: ping, TCP and UDP both ways")
        if _v.opts == ("ocsum", "oseq"):
            continue  # the same keys as gre_ipv4: its good case shows the key read past the checksum
        _add(f"test_{_side}_{_v.name}_wrong_key_from_kernel",
             lambda self, s=_side, v=_v: self.check_kernel_sends_wrong_key(s, v),
             f"{_who}, {_what}: the kernel sends a key we did not assign: dropped, counted")
        _add(f"test_{_side}_{_v.name}_wrong_key_to_kernel",
             lambda self, s=_side, v=_v: self.check_kernel_expects_wrong_key(s, v),
             f"{_who}, {_what}: the kernel expects another key than ours: refused")


if __name__ == "__main__":
    unittest.main(verbosity=2)
