#!/usr/bin/env python3
"""The LMA as a real process (`xpmip lma -c ...`) in a network namespace, driven by PBUs that
scapy builds (independent of our codec) over both transports: IPv6 Mobility Header and IPv4 /
UDP 5436 (RFC 5844). PBAs are parsed by scapy (and, in one test, captured and decoded by
tshark). Every RFC 5213 status code and RFC 5845 rule the LMA implements has a test named after
its section; the data plane's session maps are read back through the pinned maps (xpmip-dp),
and tunnelled traffic is pushed through the real XDP programs.

Topology:  [mag: scripted peer, wan0] ==== [tun0  LMA  core1 (realm 1)] ---- [cn1]
                                                       core2 (realm 2)  ---- [cn2]
Both realms hand out IPv4 home addresses from the same 10.0.0.0/16 (RFC 5845 Figure 1)."""
import ipaddress
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
import dptest  # noqa: E402
from dptest import World, wait_for  # noqa: E402

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, MIP6MH_BA, MIP6MH_BE, MIP6MH_BU, MIP6MH_Generic, MIP6OptMNID, MIP6OptUnknown  # noqa: E402
from scapy.layers.l2 import GRE  # noqa: E402
from scapy.packet import Raw  # noqa: E402

XPMIP = os.environ.get("XPMIP_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))

LMA6, LMA4 = "2001:db8:ffff::1", "192.0.2.1"
MAG_A6, MAG_A4 = "2001:db8:ffff::10", "192.0.2.10"
MAG_B6, MAG_B4 = "2001:db8:ffff::11", "192.0.2.11"
ROGUE6, ROGUE4 = "2001:db8:ffff::99", "192.0.2.99"
CN1_4, CN2_4 = "198.51.100.2", "203.0.113.2"

BU_F, BU_T, BU_B = 0x100, 0x080, 0x040   # F, T and B (RFC 6602) in scapy's 9-bit BU 'reserved' field
BA_T = 0x10                 # T in scapy's BA 'res2'

S_ACCEPTED, S_GRE_NOT_REQUIRED, S_TLV_NOT_SUPPORTED = 0, 2, 3
S_PROHIBITED, S_INSUFFICIENT, S_SEQ_OUT_OF_WINDOW = 129, 130, 135
S_NOT_LMA, S_MAG_NOT_AUTHORIZED, S_HNP_NOT_AUTHORIZED = 153, 154, 155
S_TS_MISMATCH, S_TS_LOWER, S_MISSING_HNP, S_PREFIX_SET, S_MISSING_MNID = 156, 157, 158, 159, 160
S_MISSING_HI, S_MISSING_ATT, S_GRE_REQUIRED = 161, 162, 163
S_NO_IPV4_SERVICE, S_IPV4_HOA_NOT_AUTHORIZED, S_NO_IPV6_SERVICE = 170, 171, 172

MIN_DELAY = 2.0      # min_delay_before_bce_delete, shortened for the tests
MAX_DELAY = 1.5      # max_delay_before_new_bce_assign (RFC 5213 default)
N_GENERIC = 48
N_FILL = 64
SESSIONS = 64        # data plane limit: test_zy_data_plane_full_is_130 fills it


def now_ts():
    """RFC 5213 §8.8 timestamp of now: 48 bits of seconds, 16 of 1/65536."""
    return int(time.time() * 65536)


def opt(otype, data):
    return MIP6OptUnknown(otype=otype, odata=data)


def o_hnp(prefix="::/0"):
    net = ipaddress.IPv6Network(prefix)
    return opt(22, bytes([0, net.prefixlen]) + net.network_address.packed)


def o_hi(v):
    return opt(23, bytes([0, v]))


def o_att(v):
    return opt(24, bytes([0, v]))


def o_ts(v):
    return opt(27, struct.pack("!Q", v))


def o_gre(key=None):
    return opt(33, b"\0\0" + (struct.pack("!I", key) if key is not None else b""))


def o_v4req(addr="0.0.0.0", plen=0):
    return opt(36, struct.pack("!H", plen << 10) + ipaddress.IPv4Address(addr).packed)


def o_mnid(mn):
    return MIP6OptMNID(subtype=1, id=mn.encode())


class Pba:
    """A PBA parsed by scapy, with its options by type."""

    def __init__(self, mh: bytes, src):
        self.src = src
        self.raw = mh
        self.pkt = MIP6MH_BA(mh)
        self.status = self.pkt.status
        self.seq = self.pkt.seq
        self.lifetime = self.pkt.mhtime * 4
        self.t_flag = bool(self.pkt.res2 & BA_T)
        self.options = {}
        for o in self.pkt.options:
            t = getattr(o, "otype", None)
            if t in (0, 1):
                continue
            data = bytes(o)[2:]
            self.options.setdefault(t, []).append(data)

    def has(self, t):
        return t in self.options

    def one(self, t):
        assert t in self.options, f"PBA (status {self.status}) has no option {t}: {self.pkt.options}"
        return self.options[t][0]

    @property
    def gre_key(self):
        """(present, key or None) of the GRE Key option (RFC 5845 §6.1)."""
        if not self.has(33):
            return False, None
        d = self.one(33)
        return True, (struct.unpack("!I", d[2:6])[0] if len(d) == 6 else None)

    @property
    def hnp(self):
        d = self.one(22)
        return f"{ipaddress.IPv6Address(d[2:18])}/{d[1]}"

    @property
    def hoa(self):
        d = self.one(37)   # Status, Pref-len << 2, IPv4 HoA (RFC 5844 §3.3.2)
        return d[0], str(ipaddress.IPv4Address(d[2:6]))

    @property
    def timestamp(self):
        return struct.unpack("!Q", self.one(27))[0]


class LmaTest(unittest.TestCase):
    world = None

    @classmethod
    def setUpClass(cls):
        cls.world = World("lm")
        try:
            cls._build()
        except BaseException:
            cls._stop()
            raise

    @classmethod
    def _stop(cls):
        if getattr(cls, "lma_proc", None) and cls.lma_proc.poll() is None:
            cls.lma_proc.send_signal(signal.SIGTERM)
            try:
                cls.lma_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cls.lma_proc.kill()
        if cls.world:
            cls.world.close()
        if getattr(cls, "log", None):
            cls.log.close()
        if getattr(cls, "state_dir", None):
            shutil.rmtree(cls.state_dir, ignore_errors=True)
            for f in (cls.log_path, cls.cfg_file.name):
                if os.path.exists(f):
                    os.unlink(f)

    @classmethod
    def tearDownClass(cls):
        cls._stop()

    @classmethod
    def config_text(cls):
        mns = [f"  - {{id: mn{i:02d}@op1.example, realm: 1}}" for i in range(N_GENERIC)]
        mns += [f"  - {{id: mn{i:02d}@op2.example, realm: 2}}" for i in range(4)]
        mns += [f"  - {{id: fill{i:02d}@op1.example, realm: 1, ipv4: false}}" for i in range(N_FILL)]
        return f"""# written by tests/lma/test_lma.py
instance: {cls.world.prefix}-lma
state_directory: {cls.state_dir}
log_level: debug
metrics: 127.0.0.1:9430
lma:
  addresses: [{LMA6}, {LMA4}]
  gre: allowed
interfaces:
  - {{name: tun0, kind: tunnel}}
  - {{name: core1, kind: core, realm: 1}}
  - {{name: core2, kind: core, realm: 2}}
limits: {{sessions: {SESSIONS}}}
timers:
  heartbeat_interval: 0   # (the scripted MAG answers no heartbeats)
  min_delay_before_bce_delete: {MIN_DELAY}
  max_delay_before_new_bce_assign: {MAX_DELAY}
  timestamp_validity_window: 2
realms:
  - {{id: 1, name: operator-1, interface: core1, ipv4_pool: 10.0.0.0/16, ipv6_pool: 2001:db8:a::/48}}
  - {{id: 2, name: operator-2, interface: core2, ipv4_pool: 10.0.0.0/16, ipv6_pool: 2001:db8:b::/48}}
peers:
  - {{name: mag-a, addresses: [{MAG_A6}, {MAG_A4}]}}
  - {{name: mag-b, addresses: [{MAG_B6}, {MAG_B4}]}}
mobile_nodes:
{chr(10).join(mns)}
  - {{id: keys@op1.example, realm: 1, gre: keys-required}}
  - {{id: keys2@op1.example, realm: 1, gre: keys-required}}
  - {{id: gremode@op1.example, realm: 1, gre: gre-required}}
  - {{id: notreq@op1.example, realm: 1, gre: not-required}}
  - {{id: unsup@op1.example, realm: 1, gre: unsupported}}
  - {{id: notlv@op1.example, realm: 1, tlv_header: false}}
  - {{id: noudp@op1.example, realm: 1, udp_encapsulation: false}}
  - {{id: v6only@op1.example, realm: 1, ipv4: false}}
  - {{id: v4only@op1.example, realm: 1, ipv6: false}}
  - {{id: same@op1.example, realm: 1, ipv4_home_address: 10.0.100.1, ipv6: false}}
  - {{id: same@op2.example, realm: 2, ipv4_home_address: 10.0.100.1, ipv6: false}}
  - {{id: static@op1.example, realm: 1, ipv4_home_address: 10.0.200.1, home_network_prefix: "2001:db8:a:200::/64"}}
  - {{id: listed@roam.example, realm: 2, ipv4_home_address: 10.0.100.2, ipv6: false}}
mobile_node_domains:
  - {{domain: Roam.Example, realm: 1, gre: keys-required, ipv6: false}}
"""

    @classmethod
    def _build(cls):
        w = cls.world
        lma, mag, cn1, cn2 = w.netns("lma"), w.netns("mag"), w.netns("cn1"), w.netns("cn2")
        cls.lma_ns, cls.mag_ns, cls.cn1, cls.cn2 = lma, mag, cn1, cn2
        w.veth(lma, "tun0", mag, "wan0")
        w.veth(lma, "core1", cn1, "eth0")
        w.veth(lma, "core2", cn2, "eth0")
        lma.forwarding()
        for c in (f"addr add {LMA6}/64 dev tun0 nodad", f"addr add {LMA4}/24 dev tun0",
                  "addr add 198.51.100.1/24 dev core1", "addr add 203.0.113.1/24 dev core2"):
            lma.ip(c)
        for a in (MAG_A6, MAG_B6, ROGUE6):
            mag.ip(f"addr add {a}/64 dev wan0 nodad")
        for a in (MAG_A4, MAG_B4, ROGUE4):
            mag.ip(f"addr add {a}/24 dev wan0")
        mag.end_host("wan0")
        for ns, addr, gw in ((cn1, "198.51.100.2/24", "198.51.100.1"), (cn2, "203.0.113.2/24", "203.0.113.1")):
            ns.ip(f"addr add {addr} dev eth0")
            ns.ip(f"route add default via {gw}")
            ns.end_host("eth0")
        # Neighbours resolved up front: the XDP fast path forwards only to known next hops.
        mag_mac, cn1_mac, cn2_mac = mag.mac("wan0"), cn1.mac("eth0"), cn2.mac("eth0")
        for a in (MAG_A4, MAG_B4):
            lma.ip(f"neigh replace {a} lladdr {mag_mac} dev tun0 nud permanent")
        for a in (MAG_A6, MAG_B6):
            lma.ip(f"neigh replace {a} lladdr {mag_mac} dev tun0 nud permanent")
        lma.ip(f"neigh replace {CN1_4} lladdr {cn1_mac} dev core1 nud permanent")
        lma.ip(f"neigh replace {CN2_4} lladdr {cn2_mac} dev core2 nud permanent")
        cls.extra_network(lma, mag)

        cls.state_dir = tempfile.mkdtemp(prefix="xpmip-lma-state-")   # the binding journal's
        cls.cfg_file = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="lma-", delete=False)
        cls.cfg_file.write(cls.config_text())
        cls.cfg_file.close()
        cls.log_path = cls.cfg_file.name.replace(".yaml", ".log")
        cls.log = open(cls.log_path, "w+")
        # nsenter --net keeps bpffs visible; under ip netns exec (a fresh /sys) the agent finds the host's.
        enter = (["ip", "netns", "exec", lma.name] if getattr(cls, "launch", "nsenter") == "ip-netns-exec"
                 else ["nsenter", f"--net=/run/netns/{lma.name}"])
        cls.lma_proc = subprocess.Popen([*enter, XPMIP, "lma", "-c", cls.cfg_file.name], stdout=cls.log,
                                        stderr=subprocess.STDOUT)
        w.processes.append(cls.lma_proc)
        cls.instance = f"{w.prefix}-lma"
        if not wait_for(lambda: "up:" in cls.log_text() or cls.lma_proc.poll() is not None, timeout=30):
            raise RuntimeError(f"the LMA did not start:\n{cls.log_text()}")
        if cls.lma_proc.poll() is not None:
            raise RuntimeError(f"the LMA exited ({cls.lma_proc.returncode}):\n{cls.log_text()}")
        cls.peer = mag.popen("/usr/bin/python3", os.path.join(HERE, "mh_peer.py"), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        cls.seq = 1000

    @classmethod
    def extra_network(cls, lma, mag):
        """More links before the LMA starts (subclasses)."""

    @classmethod
    def log_text(cls):
        with open(cls.log_path) as f:
            return f.read()

    # --- talking to the LMA -------------------------------------------------------------------

    def ask(self, **req):
        self.peer.stdin.write(json.dumps(req) + "\n")
        self.peer.stdin.flush()
        answer = json.loads(self.peer.stdout.readline())
        self.assertTrue(answer["ok"], answer)
        return answer

    def next_seq(self):
        type(self).seq += 1
        return type(self).seq

    def pbu(self, mn, *, hnp="::/0", v4=False, hi=1, att=4, ts=True, gre=None, key=None, flags="AHP",
            t=False, f=False, lifetime=400, seq=None, options=None, extra=(), b=False):
        """A PBU as scapy builds it. gre: None (no option), 'key' (with `key`), 'nokey'."""
        if options is None:
            options = [o_mnid(mn)] if mn else []
            if hnp is not None:
                options.append(o_hnp(hnp))
            if v4:
                options.append(o_v4req(v4 if isinstance(v4, str) else "0.0.0.0"))
            if hi is not None:
                options.append(o_hi(hi))
            if att is not None:
                options.append(o_att(att))
            if ts:
                options.append(o_ts(now_ts() if ts is True else ts))
            if gre == "key":
                options.append(o_gre(key))
            elif gre == "nokey":
                options.append(o_gre())
            options += list(extra)
        reserved = (BU_T if t else 0) | (BU_F if f else 0) | (BU_B if b else 0)
        return MIP6MH_BU(seq=self.next_seq() if seq is None else seq, flags=flags, reserved=reserved,
                         mhtime=lifetime // 4, options=options)

    def send6(self, bu, src=MAG_A6, expect=True, timeout=3.0):
        self.ask(op="drain")
        pkt = IPv6(src=src, dst=LMA6, hlim=64) / bu    # scapy computes the MH checksum
        self.ask(op="send6", packet=bytes(pkt).hex())
        if not expect:
            return None
        got = self.ask(op="recv", kinds=["mh6"], timeout=timeout)["got"]
        self.assertTrue(got, f"no PBA for a PBU from {src}\n{self.log_tail()}")
        self.assertEqual((got[0]["src"], got[0]["dst"]), (LMA6, src), "the PBA goes back the way the PBU came")
        return Pba(bytes.fromhex(got[0]["data"]), got[0]["src"])

    def send4(self, bu, src=MAG_A4, sport=5436, expect=True, timeout=3.0):
        self.ask(op="open_udp", src=src, sport=sport)
        self.ask(op="drain")
        bu.cksum = 0   # RFC 5844 §3: MH checksum 0 over UDP
        self.ask(op="send_udp", src=src, sport=sport, dst=LMA4, data=bytes(bu).hex())
        if not expect:
            return None
        got = self.ask(op="recv", kinds=["udp"], timeout=timeout)["got"]
        self.assertTrue(got, f"no PBA over UDP for a PBU from {src}:{sport}\n{self.log_tail()}")
        self.assertEqual((got[0]["src"], got[0]["sport"]), (LMA4, 5436))
        self.assertEqual(got[0]["to"], [src, sport], "the PBA goes to the PBU's source port")
        return Pba(bytes.fromhex(got[0]["data"]), got[0]["src"])

    def metric(self, series, default=None):
        """The value of one series of the LMA's metrics ('name{labels}'), `default` when absent."""
        text = self.lma_ns.run("/usr/bin/python3", "-c", (
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9430/metrics',timeout=5)"
            ".read().decode())")).stdout
        for line in text.splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return default

    def log_tail(self, n=15):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sessions(self):
        out = self.lma_ns.enter(dptest.TOOL, "-i", self.instance, "session", "show").stdout
        return json.loads(out)

    def session_of(self, hoa=None, hnp=None):
        for s in self.sessions():
            if (hoa and s.get("hoa") == f"{hoa}/32") or (hnp and s.get("hnp") == hnp):
                return s
        return None

    def assertStatus(self, pba, status):
        self.assertEqual(pba.status, status, f"PBA status {pba.status}, expected {status}\n{self.log_tail()}")

    # --- RFC 5213 registration and its status codes -------------------------------------------

    def test_rfc5213_accepted_over_ipv6_assigns_hnp_and_hoa_and_writes_the_session(self):
        bu = self.pbu("mn00@op1.example", v4=True, lifetime=400)
        pba = self.send6(bu)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.seq, bu.seq)
        self.assertEqual(pba.lifetime, 400)
        self.assertIn("P", str(pba.pkt.flags), "P set on a PBA (RFC 5213 §8.2)")
        self.assertTrue(ipaddress.IPv6Network(pba.hnp).subnet_of(ipaddress.IPv6Network("2001:db8:a::/48")))
        st, hoa = pba.hoa
        self.assertEqual(st, 0)
        self.assertIn(ipaddress.IPv4Address(hoa), ipaddress.IPv4Network("10.0.0.0/16"))
        self.assertEqual(str(ipaddress.IPv4Address(pba.one(38)[2:6])), "10.0.0.1", "default router (RFC 5844)")
        self.assertEqual(pba.one(8)[1:], b"mn00@op1.example")
        s = self.session_of(hoa=hoa)
        self.assertIsNotNone(s, self.sessions())
        self.assertEqual(s["hnp"], pba.hnp)
        self.assertEqual(s["realm"], 1)
        self.assertEqual(s["mn_interface"], "core1")
        self.assertEqual(s["encap"], "ipip")
        self.assertEqual((s["paths"][0]["local"], s["paths"][0]["remote"]), (LMA6, MAG_A6))

    def test_rfc5844_accepted_over_ipv4_udp_from_any_source_port(self):
        bu = self.pbu("mn01@op1.example", hnp=None, v4=True)
        pba = self.send4(bu, sport=40123)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertFalse(pba.has(22), "no HNP for an IPv4-only registration")
        s = self.session_of(hoa=pba.hoa[1])
        self.assertEqual((s["paths"][0]["local"], s["paths"][0]["remote"]), (LMA4, MAG_A4))
        self.assertEqual(s["encap"], "ipip")

    def test_rfc5213_154_mag_not_in_the_peer_list(self):
        self.assertStatus(self.send6(self.pbu("mn02@op1.example"), src=ROGUE6), S_MAG_NOT_AUTHORIZED)
        self.assertStatus(self.send4(self.pbu("mn02@op1.example", hnp=None, v4=True), src=ROGUE4),
                          S_MAG_NOT_AUTHORIZED)

    def test_signaling_from_the_core_side_is_dropped_counted_and_logged(self):
        """Issue 17: a PBU with an authorized MAG's address sent from a correspondent's network
        (core1), over IPv4 UDP and as an IPv6 Mobility Header, neither registers an MN nor
        de-registers one: XDP drops it on core1 (drop_signaling). One arriving where no XDP
        program is (the loopback) is refused by the agent's arrival check, counted and logged."""
        self.lma_ns.sysctl("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.core1.rp_filter=0",
                           "net.ipv4.conf.lo.rp_filter=0")   # (the kernel's reverse-path filter would hide what we do)
        self.assertStatus(self.send4(self.pbu("mn40@op1.example", hnp=None, v4=True)), S_ACCEPTED)
        def refused():
            return self.metric('xpmip_signaling_refused_total{reason="interface"}')
        def xdp_dropped():
            out = subprocess.run([XPMIP, "show", "stats", "-i", self.instance, "--json"], capture_output=True, text=True,
                                 check=True).stdout
            return json.loads(out)["drop_signaling"]
        before, dropped_before = refused(), xdp_dropped()
        self.assertIsNotNone(before, "the counter is exported")
        new = self.pbu("mn41@op1.example", hnp=None, v4=True, seq=self.next_seq())
        dereg = self.pbu("mn40@op1.example", hnp=None, v4=True, lifetime=0, seq=self.next_seq())
        new6 = self.pbu("mn42@op1.example", seq=self.next_seq())
        for bu in (new, dereg):
            bu.cksum = 0
        script = ("import sys\nfrom scapy.all import Ether, IP, IPv6, UDP, Raw, send, sendp\n"
                  "for h in sys.argv[5:7]:\n"
                  "    send(IP(src=sys.argv[1], dst=sys.argv[2]) / UDP(sport=5436, dport=5436) / Raw(bytes.fromhex(h)),"
                  " verbose=False)\n"
                  "sendp(Ether(dst=sys.argv[8]) / IPv6(src=sys.argv[3], dst=sys.argv[4], nh=135) / Raw(bytes.fromhex(sys.argv[7])),"
                  " iface='eth0', verbose=False)\n")   # (at L2: cn1 has no IPv6 route)
        mh6 = bytes(IPv6(src=MAG_A6, dst=LMA6) / new6)[40:]   # (scapy's MH checksum, over these addresses)
        self.cn1.run("/usr/bin/python3", "-c", script, MAG_A4, LMA4, MAG_A6, LMA6, bytes(new).hex(), bytes(dereg).hex(),
                     mh6.hex(), self.lma_ns.mac("core1"))
        self.assertTrue(wait_for(lambda: xdp_dropped() >= dropped_before + 3, timeout=10),
                        f"drop_signaling {xdp_dropped()}\n{self.log_tail()}")
        self.assertEqual(refused(), before, "dropped in XDP: the agent never saw them")

        # Second layer: the same PBU on an interface the data plane is not attached to (a
        # management link, no XDP) is refused by the agent's arrival check (IP_PKTINFO).
        self.world.veth(self.lma_ns, "mgmt0", self.cn1, "mgmt1")
        try:
            self.lma_ns.sysctl("net.ipv4.conf.mgmt0.rp_filter=0")
            self.lma_ns.ip("addr add 169.254.77.1/30 dev mgmt0")
            l2 = ("import sys\nfrom scapy.all import Ether, IP, UDP, Raw, sendp\n"
                  "sendp(Ether(dst=sys.argv[3]) / IP(src=sys.argv[1], dst=sys.argv[2]) / UDP(sport=5436, dport=5436) /"
                  " Raw(bytes.fromhex(sys.argv[4])), iface='mgmt1', verbose=False)\n")
            self.cn1.run("/usr/bin/python3", "-c", l2, MAG_A4, LMA4, self.lma_ns.mac("mgmt0"), bytes(new).hex())
            self.assertTrue(wait_for(lambda: refused() >= before + 1, timeout=10), f"refused {refused()}\n{self.log_tail()}")
            self.assertIn("arrived on mgmt0", self.log_text())
        finally:
            self.lma_ns.ip("link del mgmt0")
        b = {x["mn"]: x for x in json.loads(subprocess.run([XPMIP, "show", "bindings", "-i", self.instance, "--json"],
                                                           capture_output=True, text=True, check=True).stdout)}
        self.assertNotIn("mn41@op1.example", b, "no registration from the core side")
        self.assertNotIn("mn42@op1.example", b, "no registration from the core side (IPv6)")
        self.assertEqual(b["mn40@op1.example"]["state"], "registered", "no de-registration from the core side")

    def test_rfc6275_9_2_an_unknown_mh_type_gets_a_binding_error_the_way_it_came(self):
        """MH Type 12 (Home Agent Switch), well formed, over IPv6 and over UDP 5436: answered with
        a Binding Error, Status 2, from the address it was sent to. A Binding Error sent to the
        LMA is counted and never answered (RFC 6275 §9.2)."""
        sent = lambda: self.metric('xpmip_binding_errors_total{event="sent"}', 0)   # noqa: E731
        received = lambda: self.metric('xpmip_binding_errors_total{event="received"}', 0)   # noqa: E731
        sent0 = sent()
        self.ask(op="drain")
        unknown = MIP6MH_Generic(mhtype=12, msg=b"\0\0")
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / unknown).hex())
        got = self.ask(op="recv", kinds=["mh6"], timeout=3)["got"]
        self.assertTrue(got, f"no Binding Error\n{self.log_tail()}")
        be = bytes.fromhex(got[0]["data"])
        self.assertEqual((got[0]["src"], got[0]["dst"]), (LMA6, MAG_A6))
        self.assertEqual((be[2], be[6], len(be)), (7, 2, 24), be.hex())
        self.assertEqual(be[8:24], bytes(16), "the unspecified home address")
        self.ask(op="open_udp", src=MAG_A4, sport=40123)
        self.ask(op="drain")
        self.ask(op="send_udp", src=MAG_A4, sport=40123, dst=LMA4, data=bytes(MIP6MH_Generic(mhtype=12, msg=b"\0\0",
                                                                                        cksum=0)).hex())
        got = self.ask(op="recv", kinds=["udp"], timeout=3)["got"]
        self.assertTrue(got, f"no Binding Error over UDP\n{self.log_tail()}")
        self.assertEqual((got[0]["src"], got[0]["sport"], got[0]["to"]), (LMA4, 5436, [MAG_A4, 40123]))
        be = bytes.fromhex(got[0]["data"])
        self.assertEqual((be[2], be[6]), (7, 2), be.hex())
        self.assertEqual(sent(), sent0 + 2)
        self.assertIn("MH type 12 from 2001:db8:ffff::10: not one we know; answered with a Binding Error",
                      self.log_text())
        # A Binding Error in: counted, not answered (the answer would be counted in the same step).
        received0 = received()
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_BE(status=2)).hex())
        self.assertTrue(wait_for(lambda: received() >= received0 + 1, timeout=10), self.log_tail())
        self.assertEqual(sent(), sent0 + 2, "no Binding Error in answer to a Binding Error")
        self.assertIn("Binding Error status 2 (MH Type not recognized) from 2001:db8:ffff::10", self.log_text())

    def test_rfc6275_binding_errors_are_rate_limited(self):
        """A burst of 300 unknown MH Types gets at most the limit's burst (10) and its rate (10/s)
        of Binding Errors; the rest are counted as rate_limited. Every one is accounted for."""
        sent = lambda: self.metric('xpmip_binding_errors_total{event="sent"}', 0)   # noqa: E731
        limited = lambda: self.metric('xpmip_binding_errors_total{event="rate_limited"}', 0)   # noqa: E731
        time.sleep(1.1)   # (the bucket full again after the other tests)
        sent0, limited0 = sent(), limited()
        t0 = time.monotonic()
        pkt = bytes(IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_Generic(mhtype=17, msg=b"\0\0")).hex()
        self.ask(op="send6", packet=pkt, count=300)
        self.assertTrue(wait_for(lambda: sent() + limited() >= sent0 + limited0 + 300, timeout=30),
                        f"sent {sent() - sent0}, limited {limited() - limited0}\n{self.log_tail()}")
        elapsed = time.monotonic() - t0
        answered = sent() - sent0
        self.assertGreaterEqual(answered, 1)
        self.assertLessEqual(answered, 10 + 10 * elapsed + 1, f"{answered} Binding Errors in {elapsed:.2f} s")
        self.assertGreater(limited() - limited0, 0)
        self.assertIsNone(self.lma_proc.poll())

    def bindings_now(self):
        out = subprocess.run([XPMIP, "show", "bindings", "-i", self.instance, "--json"], capture_output=True, text=True,
                             check=True).stdout
        return {b["mn"]: (b["state"], b["session"]) for b in json.loads(out)}

    def test_rfc5846_bad_revocation_input_is_logged_and_changes_nothing(self):
        """A BRA for no BRI of ours, a BRI cut short, a BRI of an unknown B.R. Type: each logged by
        what is wrong, no binding changed. A BRI from a MAG is answered (the way it came, its
        sequence number and flags): global 130 (no MAG is authorized), per MN 134."""
        self.assertStatus(self.send6(self.pbu("mn38@op1.example")), S_ACCEPTED)
        before = self.bindings_now()
        self.ask(op="drain")
        stray = struct.pack("!BBHH", 2, 0, 0x7777, 0x8000) + b"\0" * 4
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_Generic(mhtype=16, msg=stray)).hex())
        self.assertTrue(wait_for(lambda: "BRA seq=30583 status=0 from 2001:db8:ffff::10: no BRI of ours outstanding"
                                 in self.log_text(), timeout=10), self.log_tail())
        short = IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_Generic(mhtype=16, len=2, msg=stray)   # 24 octets of 16
        self.ask(op="send6", packet=bytes(short).hex())
        bad_type = struct.pack("!BBHH", 9, 0, 1, 0x8000) + b"\0" * 4
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_Generic(mhtype=16, msg=bad_type)).hex())
        self.assertTrue(wait_for(lambda: "B.R. Type at offset 6: 9 is not 1 (Indication) or 2" in self.log_text(),
                                 timeout=10), self.log_tail())
        self.assertTrue(wait_for(lambda: "Header Len at offset 1: 2 (24 octets) runs beyond the 16" in self.log_text(),
                                 timeout=10), self.log_tail())
        for g, status in ((0xa000, 130), (0x8000, 134)):
            bri = struct.pack("!BBHH", 1, 128 if g & 0x2000 else 1, 0x4100 + status, g)
            bri += bytes(MIP6OptMNID(subtype=1, id=b"mag@op1.example"))
            bri += b"\0" * ((-(6 + len(bri))) % 8)
            self.ask(op="drain")
            self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_Generic(mhtype=16, msg=bri)).hex())
            got = self.ask(op="recv", kinds=["mh6"], timeout=3)["got"]
            self.assertTrue(got, f"no BRA\n{self.log_tail()}")
            bra = bytes.fromhex(got[0]["data"])
            self.assertEqual((bra[2], bra[6], bra[7]), (16, 2, status), bra.hex())
            self.assertEqual(struct.unpack("!HH", bra[8:12]), (0x4100 + status, g))
        self.assertEqual(self.bindings_now(), before, "no binding changed")

    def test_rfc6602_a_bulk_pbu_refreshes_its_group_over_the_wire(self):
        """MNs registered with B and a Mobile Node Group Identifier (type 50) join the MAG's group
        (PBA: B and our group's id); one PBU naming the group refreshes them all and echoes it; an
        unknown group is 175."""
        group = lambda g: opt(50, bytes([1, 0]) + struct.pack("!I", g))   # noqa: E731
        ours = set()
        for mn in ("mn33@op1.example", "mn34@op1.example"):
            pba = self.send6(self.pbu(mn, b=True, extra=[group(9)]))
            self.assertStatus(pba, S_ACCEPTED)
            self.assertTrue(pba.raw[7] & 0x08, "B in the PBA")
            self.assertTrue(pba.has(50))
            ours.add(struct.unpack("!I", pba.options[50][0][2:6])[0])
        self.assertEqual(len(ours), 1, "one group of ours for the MAG's group 9")
        time.sleep(2.0)
        remaining = lambda mn: json.loads(subprocess.run(   # noqa: E731
            [XPMIP, "show", "bindings", "-i", self.instance, "--mn", mn, "--json"], capture_output=True, text=True,
            check=True).stdout)[0]["remaining"]
        before = remaining("mn33@op1.example")
        self.assertLessEqual(before, 398)
        pba = self.send6(self.pbu(None, hnp=None, hi=None, att=None, extra=[group(9)]))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(struct.unpack("!BBI", pba.options[50][0]), (1, 0, 9), "the MAG's group id copied")
        self.assertEqual(pba.lifetime, 400)
        for mn in ("mn33@op1.example", "mn34@op1.example"):
            self.assertGreater(remaining(mn), before, f"{mn} refreshed by the bulk PBU")
        self.assertIn("bulk PBU group=9 mag=2001:db8:ffff::10", self.log_text())
        self.assertIn("2 binding(s) refreshed", self.log_text())
        self.assertStatus(self.send6(self.pbu(None, hnp=None, hi=None, att=None, extra=[group(10)])), 175)

    def test_rfc5213_160_missing_mn_identifier(self):
        self.assertStatus(self.send6(self.pbu(None)), S_MISSING_MNID)

    def test_rfc5213_153_unknown_mobile_node(self):
        self.assertStatus(self.send6(self.pbu("stranger@elsewhere.example")), S_NOT_LMA)

    def test_rfc5213_158_missing_home_network_prefix(self):
        self.assertStatus(self.send6(self.pbu("mn03@op1.example", hnp=None)), S_MISSING_HNP)

    def test_rfc5213_161_missing_handoff_indicator(self):
        self.assertStatus(self.send6(self.pbu("mn03@op1.example", hi=None)), S_MISSING_HI)

    def test_rfc5213_162_missing_access_technology_type(self):
        self.assertStatus(self.send6(self.pbu("mn03@op1.example", att=None)), S_MISSING_ATT)

    def test_rfc5213_155_requested_prefix_not_authorized(self):
        pba = self.send6(self.pbu("mn04@op1.example", hnp="2001:db8:a:4444::/64"))
        self.assertStatus(pba, S_HNP_NOT_AUTHORIZED)
        self.assertIsNone(self.session_of(hnp="2001:db8:a:4444::/64"))

    def test_rfc5213_static_prefix_and_address_are_granted(self):
        pba = self.send6(self.pbu("static@op1.example", hnp="2001:db8:a:200::/64", v4="10.0.200.1"))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.hnp, "2001:db8:a:200::/64")
        self.assertEqual(pba.hoa, (0, "10.0.200.1"))

    def test_rfc5213_159_prefix_set_does_not_match_the_binding(self):
        first = self.send6(self.pbu("mn05@op1.example"))
        self.assertStatus(first, S_ACCEPTED)
        other = str(ipaddress.IPv6Network(first.hnp).network_address + (1 << 64)) + "/64"
        self.assertStatus(self.send6(self.pbu("mn05@op1.example", hnp=other, hi=5)), S_PREFIX_SET)
        self.assertStatus(self.send6(self.pbu("mn05@op1.example", hnp=first.hnp, hi=5)), S_ACCEPTED)

    def test_rfc5844_171_requested_ipv4_home_address_not_authorized(self):
        self.assertStatus(self.send6(self.pbu("mn06@op1.example", v4="10.0.99.99")), S_IPV4_HOA_NOT_AUTHORIZED)

    def test_rfc5844_170_ipv4_service_not_authorized_and_ipv6_goes_ahead_without_it(self):
        self.assertStatus(self.send4(self.pbu("v6only@op1.example", hnp=None, v4=True)), S_NO_IPV4_SERVICE)
        pba = self.send6(self.pbu("v6only@op1.example", v4=True))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.hoa[0], 129, "IPv4 HoA Reply: administratively prohibited (RFC 5844 §3.3.2)")
        self.assertIsNotNone(self.session_of(hnp=pba.hnp))

    def test_rfc5213_5_5_156_timestamp_outside_the_window_carries_ours(self):
        stale = now_ts() - 60 * 65536
        pba = self.send6(self.pbu("mn07@op1.example", ts=stale))
        self.assertStatus(pba, S_TS_MISMATCH)
        self.assertLess(abs(pba.timestamp - now_ts()), 5 * 65536, "the PBA carries the LMA's current time")

    def test_rfc5213_5_5_157_timestamp_lower_than_the_last_accepted(self):
        t1 = now_ts()
        self.assertStatus(self.send6(self.pbu("mn08@op1.example", ts=t1)), S_ACCEPTED)
        pba = self.send6(self.pbu("mn08@op1.example", ts=t1 - 100, hi=5))
        self.assertStatus(pba, S_TS_LOWER)
        self.assertGreater(pba.timestamp, t1 - 100)
        self.assertStatus(self.send6(self.pbu("mn08@op1.example", ts=t1 + 100, hi=5)), S_ACCEPTED)

    def test_rfc5213_5_5_135_sequence_number_mode_without_timestamps(self):
        first = self.send6(self.pbu("mn09@op1.example", ts=False, seq=500))
        self.assertStatus(first, S_ACCEPTED)
        self.assertFalse(first.has(27), "no Timestamp in the PBA when the PBU had none")
        pba = self.send6(self.pbu("mn09@op1.example", ts=False, seq=499, hi=5))
        self.assertStatus(pba, S_SEQ_OUT_OF_WINDOW)
        self.assertEqual(pba.seq, 500, "135 carries the last accepted sequence number (RFC 6275 §6.1.8)")
        self.assertStatus(self.send6(self.pbu("mn09@op1.example", ts=False, seq=501, hi=5)), S_ACCEPTED)

    def test_rfc5213_tolerates_h0_hi4_att0_and_no_timestamp(self):
        pba = self.send6(self.pbu("mn10@op1.example", flags="AP", hi=4, att=0, ts=False))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertIsNotNone(self.session_of(hnp=pba.hnp))

    def test_two_realms_share_10_0_0_0_16_with_their_own_pools_and_sessions(self):
        # The same static address in both realms behind one MAG: without GRE keys the two could
        # not be told apart (RFC 5845 §5.1, overlapping private addresses -> 163); with keys,
        # two sessions, each with its realm's interface.
        r1 = self.send4(self.pbu("same@op1.example", hnp=None, v4=True))
        self.assertStatus(r1, S_ACCEPTED)
        self.assertStatus(self.send4(self.pbu("same@op2.example", hnp=None, v4=True)), S_GRE_REQUIRED)
        r2 = self.send4(self.pbu("same@op2.example", hnp=None, v4=True, gre="key", key=0x5502))
        self.assertStatus(r2, S_ACCEPTED)
        self.assertEqual(r1.hoa, r2.hoa)
        both = sorted((s["realm"], s["mn_interface"]) for s in self.sessions() if s.get("hoa") == "10.0.100.1/32")
        self.assertEqual(both, [(1, "core1"), (2, "core2")])
        # Dynamic: realm 2's pool starts from its first host whatever realm 1 has handed out.
        a = self.send4(self.pbu("mn00@op2.example", hnp=None, v4=True))
        self.assertStatus(a, S_ACCEPTED)
        self.assertEqual(a.hoa[1], "10.0.0.2", "realm 2 hands out from its own copy of 10.0.0.0/16")
        s = [x for x in self.sessions() if x.get("hoa") == "10.0.0.2/32" and x["realm"] == 2]
        self.assertEqual(len(s), 1)
        self.assertEqual(s[0]["mn_interface"], "core2")

    def test_rfc5213_handoff_hi3_to_another_mag_updates_the_entry_in_place(self):
        a = self.send6(self.pbu("mn12@op1.example", gre="key", key=0x1201))
        self.assertStatus(a, S_ACCEPTED)
        b = self.send6(self.pbu("mn12@op1.example", hnp=a.hnp, hi=3, gre="key", key=0x1202), src=MAG_B6)
        self.assertStatus(b, S_ACCEPTED)
        self.assertEqual(b.hnp, a.hnp)
        s = self.session_of(hnp=a.hnp)
        self.assertEqual(s["paths"][0]["remote"], MAG_B6)
        self.assertEqual(s["paths"][0]["key_downlink"], 0x1202)
        self.assertEqual(len([x for x in self.sessions() if x.get("hnp") == a.hnp]), 1)

    def test_rfc5213_5_4_1_3_hi4_waits_for_the_old_mags_deregistration(self):
        a = self.send6(self.pbu("mn13@op1.example"))
        self.assertStatus(a, S_ACCEPTED)
        self.ask(op="drain")
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_B6, dst=LMA6) / self.pbu("mn13@op1.example", hi=4)).hex())
        quiet = self.ask(op="recv", kinds=["mh6"], timeout=0.5)["got"]
        self.assertEqual(quiet, [], "no answer while the previous MAG may still de-register")
        self.ask(op="send6", packet=bytes(IPv6(src=MAG_A6, dst=LMA6) / self.pbu("mn13@op1.example", lifetime=0,
                                                                                 hnp=a.hnp)).hex())
        got = self.ask(op="recv", kinds=["mh6"], timeout=2.0, count=2)["got"]
        self.assertEqual(sorted(g["dst"] for g in got), sorted([MAG_A6, MAG_B6]), got)
        for g in got:
            self.assertEqual(Pba(bytes.fromhex(g["data"]), g["src"]).status, S_ACCEPTED)
        new = [Pba(bytes.fromhex(g["data"]), g["src"]) for g in got if g["dst"] == MAG_B6][0]
        self.assertEqual(new.hnp, a.hnp, "the handoff keeps the prefix")
        self.assertEqual(self.session_of(hnp=a.hnp)["paths"][0]["remote"], MAG_B6)

    def test_rfc5213_5_4_1_3_hi4_without_deregistration_answers_after_max_delay(self):
        a = self.send6(self.pbu("mn14@op1.example"))
        self.assertStatus(a, S_ACCEPTED)
        start = time.monotonic()
        b = self.send6(self.pbu("mn14@op1.example", hi=4), src=MAG_B6, timeout=MAX_DELAY + 2)
        waited = time.monotonic() - start
        self.assertStatus(b, S_ACCEPTED)
        self.assertGreaterEqual(waited, MAX_DELAY - 0.1)
        self.assertLess(waited, MAX_DELAY + 1.5)
        self.assertEqual(self.session_of(hnp=a.hnp)["paths"][0]["remote"], MAG_B6)

    def test_rfc5213_5_3_5_deregistration_holds_the_entry_then_frees_it(self):
        a = self.send6(self.pbu("mn15@op1.example", v4=True, gre="key", key=0x1501))
        self.assertStatus(a, S_ACCEPTED)
        _, uplink = a.gre_key
        d = self.send6(self.pbu("mn15@op1.example", lifetime=0, hnp=a.hnp, v4=a.hoa[1]))
        self.assertStatus(d, S_ACCEPTED)
        self.assertEqual(d.lifetime, 0)
        self.assertFalse(d.gre_key[0])
        self.assertIsNone(self.session_of(hnp=a.hnp), "forwarding stops at de-registration")
        # Within MinDelayBeforeBCEDelete a new MAG takes the entry over: same prefix, same key.
        b = self.send6(self.pbu("mn15@op1.example", hi=3, v4=True, gre="key", key=0x1502), src=MAG_B6)
        self.assertStatus(b, S_ACCEPTED)
        self.assertEqual((b.hnp, b.hoa, b.gre_key), (a.hnp, a.hoa, (True, uplink)))
        d2 = self.send6(self.pbu("mn15@op1.example", lifetime=0, hnp=a.hnp), src=MAG_B6)
        self.assertStatus(d2, S_ACCEPTED)
        self.assertTrue(wait_for(lambda: "mn15@op1.example deleted" in self.log_text(), timeout=MIN_DELAY + 3),
                        self.log_tail())
        # Freed: a new registration is a new mobility session.
        c = self.send6(self.pbu("mn15@op1.example", v4=True, gre="key", key=0x1503))
        self.assertStatus(c, S_ACCEPTED)
        self.assertNotEqual(c.gre_key[1], uplink, "a freed uplink key rests before reuse (RFC 5845 §3.3)")

    def test_rfc5213_lifetime_expiry_removes_the_session(self):
        a = self.send6(self.pbu("mn16@op1.example", lifetime=4))
        self.assertStatus(a, S_ACCEPTED)
        self.assertEqual(a.lifetime, 4)
        self.assertIsNotNone(self.session_of(hnp=a.hnp))
        self.assertTrue(wait_for(lambda: self.session_of(hnp=a.hnp) is None, timeout=8), "expired session stays")
        self.assertIn("binding of mn16@op1.example expired", self.log_text())

    def test_rfc5213_deregistration_from_a_mag_the_mn_left_keeps_the_binding(self):
        a = self.send6(self.pbu("mn17@op1.example"))
        self.assertStatus(self.send6(self.pbu("mn17@op1.example", hi=3, hnp=a.hnp), src=MAG_B6), S_ACCEPTED)
        late = self.send6(self.pbu("mn17@op1.example", lifetime=0, hnp=a.hnp), src=MAG_A6)
        self.assertStatus(late, S_ACCEPTED)
        self.assertEqual(self.session_of(hnp=a.hnp)["paths"][0]["remote"], MAG_B6)

    def test_rfc5844_f_flag_selects_udp_encapsulation_and_nat_detection(self):
        pba = self.send4(self.pbu("mn18@op1.example", hnp=None, v4=True, f=True))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertTrue(pba.has(31), "NAT Detection option with F (RFC 5844 §3.1.3)")
        self.assertEqual(self.session_of(hoa=pba.hoa[1])["encap"], "udp")

    def test_rfc5844_f_flag_refused_by_policy_is_129(self):
        self.assertStatus(self.send4(self.pbu("noudp@op1.example", hnp=None, v4=True, f=True)), S_PROHIBITED)

    def route_generation(self):
        """config.route_generation of the running LMA's data plane (README "Route cache")."""
        out = subprocess.run(["bpftool", "-j", "map", "lookup", "pinned",
                              f"/sys/fs/bpf/xpmip/{self.instance}/config", "key", "0", "0", "0", "0"],
                             capture_output=True, text=True, check=True).stdout
        value = bytes(int(b, 16) for b in json.loads(out)["value"])
        return int.from_bytes(value[12:16], "little")

    def test_route_events_make_the_route_cache_stale(self):
        """Every route, neighbour or link event the agent reads moves the route cache's
        generation, so the uplink asks the FIB again (README "Route cache")."""
        for change in ("neigh replace 198.51.100.77 lladdr 02:00:00:00:77:77 dev core1 nud permanent",
                       "route add 192.0.2.128/25 via 198.51.100.2 dev core1"):
            before = self.route_generation()
            self.lma_ns.ip(change)
            self.assertTrue(wait_for(lambda: self.route_generation() > before, timeout=10),
                            f"after '{change}' the generation stayed {before}")
        self.lma_ns.ip("neigh del 198.51.100.77 dev core1")
        self.lma_ns.ip("route del 192.0.2.128/25")

    def test_mobile_node_domains_authorize_every_mn_of_the_nai_realm_with_its_profile(self):
        # Not listed under mobile_nodes: authorized by the NAI realm (RFC 7542, case-insensitive)
        # or a parent domain, with the domain's profile: realm 1, GRE keys required, IPv4 only.
        self.assertStatus(self.send4(self.pbu("anyone@roam.example", hnp=None, v4=True)), S_GRE_REQUIRED)
        self.assertStatus(self.send6(self.pbu("anyone@roam.example", gre="key", key=0x7700)),
                          S_NO_IPV6_SERVICE)
        registered = []
        for i, mn in enumerate(("anyone@roam.example", "Bob@ROAM.Example", "x@cell.roam.example")):
            pba = self.send4(self.pbu(mn, hnp=None, v4=True, gre="key", key=0x7701 + i))
            self.assertStatus(pba, S_ACCEPTED)
            hoa = pba.hoa[1]
            s = [x for x in self.sessions() if x.get("hoa") == f"{hoa}/32" and x["realm"] == 1]
            self.assertEqual(len(s), 1, self.sessions())
            self.assertEqual((s[0]["mn_interface"], s[0]["encap"], s[0]["paths"][0]["key_downlink"]),
                             ("core1", "gre", 0x7701 + i))
            registered.append((mn, hoa))
        # A realm that merely ends with the domain's name is another domain.
        self.assertStatus(self.send4(self.pbu("mn@notroam.example", hnp=None, v4=True, gre="key", key=1)),
                          S_NOT_LMA)
        # A listed MN keeps its own entry: realm 2, its static address, no GRE requirement.
        listed = self.send4(self.pbu("listed@roam.example", hnp=None, v4=True))
        self.assertStatus(listed, S_ACCEPTED)
        self.assertEqual(listed.hoa, (0, "10.0.100.2"))
        s = [x for x in self.sessions() if x.get("hoa") == "10.0.100.2/32" and x["realm"] == 2]
        self.assertEqual((s[0]["mn_interface"], s[0]["encap"]), ("core2", "ipip"))
        registered.append(("listed@roam.example", listed.hoa[1]))
        for mn, hoa in registered:   # leave the data plane as it was
            self.assertStatus(self.send4(self.pbu(mn, hnp=None, v4=hoa, lifetime=0)), S_ACCEPTED)

    # --- RFC 5845 GRE key negotiation ---------------------------------------------------------

    def test_rfc5845_3_1_initial_pbu_with_key_gets_the_uplink_key(self):
        pba = self.send6(self.pbu("mn19@op1.example", gre="key", key=0xA0000001))
        self.assertStatus(pba, S_ACCEPTED)
        present, uplink = pba.gre_key
        self.assertTrue(present)
        self.assertIsNotNone(uplink, "Length 6: the uplink key is carried")
        self.assertNotEqual(uplink, 0)
        s = self.session_of(hnp=pba.hnp)
        self.assertEqual(s["encap"], "gre")
        self.assertTrue(s["gre_keys"])
        self.assertEqual((s["paths"][0]["key_downlink"], s["paths"][0]["key_uplink"]), (0xA0000001, uplink))

    def test_rfc5845_3_2_gre_mode_only_gets_the_option_without_key(self):
        pba = self.send6(self.pbu("mn20@op1.example", gre="nokey"))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.gre_key, (True, None))
        self.assertEqual(len(pba.one(33)), 2, "Length 2")
        s = self.session_of(hnp=pba.hnp)
        self.assertEqual((s["encap"], s["gre_keys"]), ("gre", False))

    def test_rfc5845_5_1_no_option_while_policy_requires_keys_is_163(self):
        pba = self.send6(self.pbu("keys@op1.example"))
        self.assertStatus(pba, S_GRE_REQUIRED)
        self.assertFalse(pba.gre_key[0])
        self.assertStatus(self.send6(self.pbu("gremode@op1.example")), S_GRE_REQUIRED)

    def test_rfc5845_5_1_keys_required_but_option_without_key_is_163(self):
        self.assertStatus(self.send6(self.pbu("keys2@op1.example", gre="nokey")), S_GRE_REQUIRED)
        self.assertStatus(self.send6(self.pbu("keys2@op1.example", gre="key", key=77)), S_ACCEPTED)

    def test_rfc5845_gre_mode_required_accepts_either_form(self):
        pba = self.send6(self.pbu("gremode@op1.example", gre="nokey"))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.gre_key, (True, None))

    def test_rfc5845_5_1_option_while_policy_does_not_require_gre_is_status_2_without_option(self):
        pba = self.send6(self.pbu("notreq@op1.example", gre="key", key=5))
        self.assertStatus(pba, S_GRE_NOT_REQUIRED)
        self.assertFalse(pba.gre_key[0], "MUST NOT include the GRE Key option")
        self.assertEqual(self.session_of(hnp=pba.hnp)["encap"], "ipip", "accepted, without GRE")

    def test_rfc5845_4_2_unsupported_policy_answers_like_an_lma_without_rfc5845(self):
        pba = self.send4(self.pbu("unsup@op1.example", hnp=None, v4=True, gre="key", key=9, t=True))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertFalse(pba.gre_key[0])
        self.assertFalse(pba.t_flag)

    def test_rfc5845_3_3_reregistration_keeps_the_uplink_key(self):
        a = self.send6(self.pbu("mn21@op1.example", gre="key", key=0x2101))
        b = self.send6(self.pbu("mn21@op1.example", hnp=a.hnp, hi=5, gre="key", key=0x2101))
        self.assertStatus(b, S_ACCEPTED)
        self.assertEqual(b.gre_key, a.gre_key)

    def test_rfc5845_3_3_handoff_with_key_keeps_the_uplink_key(self):
        a = self.send6(self.pbu("mn22@op1.example", gre="key", key=0x2201))
        b = self.send6(self.pbu("mn22@op1.example", hnp=a.hnp, hi=3, gre="key", key=0x2202), src=MAG_B6)
        self.assertStatus(b, S_ACCEPTED)
        self.assertEqual(b.gre_key, a.gre_key)
        self.assertEqual(self.session_of(hnp=a.hnp)["paths"][0]["key_downlink"], 0x2202,
                         "the new MAG's downlink key")

    def test_rfc5845_3_3_handoff_without_option_on_gre_entry_163_when_policy_requires(self):
        a = self.send6(self.pbu("keys@op1.example", gre="key", key=0x3001))
        self.assertStatus(a, S_ACCEPTED)
        b = self.send6(self.pbu("keys@op1.example", hnp=a.hnp, hi=3), src=MAG_B6)
        self.assertStatus(b, S_GRE_REQUIRED)
        self.assertEqual(self.session_of(hnp=a.hnp)["paths"][0]["remote"], MAG_A6, "the binding is unchanged")

    def test_rfc5845_3_3_handoff_without_option_accepted_without_it_otherwise(self):
        a = self.send6(self.pbu("mn23@op1.example", gre="key", key=0x2301))
        b = self.send6(self.pbu("mn23@op1.example", hnp=a.hnp, hi=3), src=MAG_B6)
        self.assertStatus(b, S_ACCEPTED)
        self.assertFalse(b.gre_key[0])
        s = self.session_of(hnp=a.hnp)
        self.assertEqual((s["encap"], s["paths"][0]["remote"]), ("ipip", MAG_B6))

    def test_rfc5845_7_3_t_flag_echoed_when_tlv_supported(self):
        pba = self.send4(self.pbu("mn24@op1.example", hnp=None, v4=True, gre="key", key=0x2401, t=True))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertTrue(pba.t_flag)
        self.assertEqual(self.session_of(hoa=pba.hoa[1])["encap"], "udp-tlv-gre")

    def test_rfc5845_7_3_no_t_in_the_pba_unless_in_the_pbu(self):
        pba = self.send4(self.pbu("mn25@op1.example", hnp=None, v4=True, gre="key", key=0x2501))
        self.assertStatus(pba, S_ACCEPTED)
        self.assertFalse(pba.t_flag)
        self.assertEqual(self.session_of(hoa=pba.hoa[1])["encap"], "gre")

    def test_rfc5845_7_3_t_flag_without_tlv_support_is_status_3_and_gre_without_udp(self):
        pba = self.send4(self.pbu("notlv@op1.example", hnp=None, v4=True, gre="key", key=0x2601, t=True))
        self.assertStatus(pba, S_TLV_NOT_SUPPORTED)
        self.assertFalse(pba.t_flag)
        self.assertTrue(pba.gre_key[0])
        self.assertEqual(self.session_of(hoa=pba.hoa[1])["encap"], "gre")

    def test_rfc5845_3_3_uplink_keys_are_unique_and_never_0(self):
        keys = []
        for i in range(26, 32):
            pba = self.send6(self.pbu(f"mn{i:02d}@op1.example", gre="key", key=0x100 + i))
            self.assertStatus(pba, S_ACCEPTED)
            keys.append(pba.gre_key[1])
        self.assertNotIn(0, keys)
        self.assertEqual(len(set(keys)), len(keys), keys)
        in_maps = [p["key_uplink"] for s in self.sessions() for p in s["paths"] if p["key_uplink"]]
        self.assertEqual(len(set(in_maps)), len(in_maps), "no two sessions share an uplink key")

    # --- consistency with the data plane ------------------------------------------------------

    def test_traffic_flows_for_an_accepted_session_and_stops_after_deregistration(self):
        pba = self.send4(self.pbu("mn32@op1.example", hnp=None, v4=True, gre="key", key=0x3201))
        self.assertStatus(pba, S_ACCEPTED)
        hoa, uplink = pba.hoa[1], pba.gre_key[1]
        listener = self.cn1.popen("/usr/bin/python3", "-c", (
            "import socket,sys\n"
            "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(('0.0.0.0',7000)); s.settimeout(3)\n"
            "print('ready',flush=True)\n"
            "while True:\n"
            "  try: d,a=s.recvfrom(2048)\n"
            "  except socket.timeout: break\n"
            "  print(a[0], d.decode(), flush=True)\n"), stdout=subprocess.PIPE, text=True)
        self.assertEqual(listener.stdout.readline().strip(), "ready")

        def uplink_packet(tag):
            inner = IP(src=hoa, dst=CN1_4, ttl=64) / UDP(sport=7001, dport=7000) / Raw(tag.encode())
            return bytes(IP(src=MAG_A4, dst=LMA4) / GRE(key_present=1, key=uplink, proto=0x0800) / inner)

        # Uplink: the MAG's GRE with the uplink key reaches the correspondent.
        self.ask(op="send4raw", packet=uplink_packet("before").hex())
        line = listener.stdout.readline().strip()
        self.assertEqual(line, f"{hoa} before")
        # Downlink: the correspondent's packet reaches the MAG in GRE with the MAG's key.
        self.ask(op="drain")
        self.cn1.run("/usr/bin/python3", "-c", f"import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                                             f"s.sendto(b'down',('{hoa}',7002))")
        got = self.ask(op="recv", kinds=["gre4"], timeout=3)["got"]
        self.assertTrue(got, "no GRE packet toward the MAG")
        g = IP(bytes.fromhex(got[0]["data"]))
        self.assertEqual((g.src, g.dst, g[GRE].key), (LMA4, MAG_A4, 0x3201))
        self.assertEqual(g[GRE].payload[IP].dst, hoa)
        # De-registration: the same uplink packet is dropped now.
        d = self.send4(self.pbu("mn32@op1.example", hnp=None, v4=hoa, lifetime=0))
        self.assertStatus(d, S_ACCEPTED)
        self.ask(op="send4raw", packet=uplink_packet("after").hex())
        listener.wait(timeout=15)
        rest = listener.stdout.read()
        self.assertNotIn("after", rest, "uplink traffic still forwarded after de-registration")

    def test_zy_data_plane_full_is_130_and_nothing_is_half_written(self):
        # Fill the session map to its limit on top of what the other tests left.
        free = SESSIONS - len(self.sessions())
        self.assertGreater(free, 0)
        self.assertLessEqual(free, N_FILL)
        fill = [f"fill{i:02d}@op1.example" for i in range(free)]
        for mn in fill:
            self.assertStatus(self.send6(self.pbu(mn, ts=False)), S_ACCEPTED)
        self.assertEqual(len(self.sessions()), SESSIONS)
        before = self.sessions()
        over = self.send6(self.pbu("mn47@op1.example", v4=True, gre="key", key=0x4701))
        self.assertStatus(over, S_INSUFFICIENT)
        self.assertFalse(over.gre_key[0])
        self.assertEqual(self.sessions(), before, "nothing half-written")
        # Session ids index the data plane's array (README "Data plane at scale"): the LMA runs out
        # of them before the data plane can refuse anything.
        self.assertIn("mn47@op1.example: every session id is in use (limits.sessions)", self.log_text())
        # Room again once de-registered bindings are deleted and their ids (which were their GRE
        # keys) have rested as long again (RFC 5213 §5.3.5; README "Data plane at scale"): the MN
        # registers, with a fresh session. Until then every try is 130 and changes nothing.
        for mn in fill:
            self.assertStatus(self.send6(self.pbu(mn, ts=False, lifetime=0)), S_ACCEPTED)
        tries = []

        def registered():
            tries.append(self.send6(self.pbu("mn47@op1.example", v4=True, gre="key", key=0x4701)))
            self.assertIn(tries[-1].status, (S_ACCEPTED, S_INSUFFICIENT))
            return tries[-1].status == S_ACCEPTED
        self.assertTrue(wait_for(registered, timeout=20, interval=0.5), self.log_tail())
        again = tries[-1]
        self.assertIsNotNone(self.session_of(hnp=again.hnp))

    # --- bad input ----------------------------------------------------------------------------

    def test_malformed_pbu_is_dropped_and_logged_and_the_lma_keeps_serving(self):
        bad = IPv6(src=MAG_A6, dst=LMA6) / MIP6MH_BU(seq=1, flags="AHP", mhtime=10,
                                                     options=[o_mnid("mn45@op1.example"), o_hnp(),
                                                              opt(33, b"\0\0\0")])  # GRE Key length 3
        self.ask(op="drain")
        self.ask(op="send6", packet=bytes(bad).hex())
        self.assertEqual(self.ask(op="recv", kinds=["mh6"], timeout=0.7)["got"], [])
        self.assertTrue(wait_for(lambda: "malformed message from" in self.log_text() and "GRE Key" in self.log_text()),
                        self.log_tail())
        # A PBU over UDP whose MH is cut short.
        self.ask(op="open_udp", src=MAG_A4, sport=5436)
        self.ask(op="send_udp", src=MAG_A4, sport=5436, dst=LMA4, data=bytes(self.pbu("mn45@op1.example"))[:10].hex())
        self.assertIsNone(self.lma_proc.poll())
        self.assertStatus(self.send6(self.pbu("mn45@op1.example")), S_ACCEPTED)

    def test_zz_tshark_decodes_the_pbas_on_the_wire(self):
        cap = self.log_path.replace(".log", ".pcap")
        tsh = self.mag_ns.popen("tshark", "-q", "-i", "wan0", "-w", cap, "-f", "udp port 5436 or ip6 proto 135",
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(0.3)
        self.assertTrue(wait_for(lambda: os.path.exists(cap) and os.path.getsize(cap) > 0, timeout=10))
        v6 = self.send6(self.pbu("mn46@op1.example", gre="key", key=0x4601))
        v4 = self.send4(self.pbu("mn44@op1.example", hnp=None, v4=True, gre="key", key=0x4401, t=True))
        time.sleep(0.5)
        tsh.send_signal(signal.SIGINT)
        tsh.wait(timeout=10)
        out = subprocess.run(["tshark", "-r", cap, "-Y", "mip6.mhtype == 6", "-T", "json", "-e", "mip6.ba.status",
                              "-e", "mip6.gre_key", "-e", "mip6.ba.t_flag", "-e", "udp.srcport"],
                             capture_output=True, text=True, check=True).stdout
        os.unlink(cap)
        pkts = [p["_source"]["layers"] for p in json.loads(out)]
        self.assertEqual(len(pkts), 2, pkts)
        self.assertEqual(pkts[0]["mip6.ba.status"], ["0"])
        self.assertEqual(int(pkts[0]["mip6.gre_key"][0]), v6.gre_key[1])
        self.assertEqual(int(pkts[1]["mip6.gre_key"][0]), v4.gre_key[1])
        self.assertEqual(pkts[1]["udp.srcport"], ["5436"])
        self.assertIn(pkts[1]["mip6.ba.t_flag"][0], ("1", "True"))

    def test_zz_one_log_line_per_pbu_pba(self):
        text = self.log_text()
        line = [ln for ln in text.splitlines() if "PBU mn=mn19@op1.example" in ln]
        self.assertEqual(len(line), 1, line)
        self.assertRegex(line[0], r"mag=2001:db8:ffff::10 seq=\d+ lifetime=400s hi=1 gre=key:2684354561 T=0 -> "
                                  r"PBA status=ACCEPTED\(0\) seq=\d+ lifetime=400s gre=key:\d+ T=0 hnp=\S+ "
                                  r"session=\d+ encap=gre")


class LmaShowTest(unittest.TestCase):
    """`xpmip show` against a running LMA (control socket) and from pinned maps alone."""

    def show(self, *args, check=True):
        r = subprocess.run([XPMIP, "show", *args], capture_output=True, text=True)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_show_over_the_control_socket(self):
        LmaTest.setUpClass()
        try:
            t = LmaTest("test_rfc5213_160_missing_mn_identifier")
            pba = t.send6(t.pbu("mn00@op1.example", v4=True, gre="key", key=0x1234))
            self.assertEqual(pba.status, 0)
            inst = LmaTest.instance
            b = json.loads(self.show("bindings", "-i", inst, "--json").stdout)
            self.assertEqual(len(b), 1)
            self.assertEqual((b[0]["mn"], b[0]["mag"], b[0]["state"], b[0]["key_downlink"], b[0]["key_uplink"]),
                             ("mn00@op1.example", MAG_A6, "registered", 0x1234, pba.gre_key[1]))
            self.assertEqual(b[0]["hoa"], pba.hoa[1])
            self.assertGreater(b[0]["remaining"], 390)
            s = json.loads(self.show("sessions", "-c", LmaTest.cfg_file.name, "--json").stdout)
            self.assertEqual([x["id"] for x in s], [b[0]["session"]])
            self.assertIn("counters", s[0])
            p = json.loads(self.show("paths", "-i", inst, "--json").stdout)
            self.assertEqual((p[0]["remote"], p[0]["key_downlink"], p[0]["up"]), (MAG_A6, 0x1234, True))
            table = self.show("bindings", "-i", inst).stdout
            self.assertIn("mn00@op1.example", table)
            self.assertIn("KEY_UPLINK", table)
            self.assertIn("drop_unknown_key", self.show("stats", "-i", inst).stdout)
            # Prometheus text format from inside the LMA's namespace.
            m = LmaTest.lma_ns.run("/usr/bin/python3", "-c", "import urllib.request;print(urllib.request.urlopen("
                                   "'http://127.0.0.1:9430/metrics',timeout=5).read().decode())").stdout
            self.assertIn("# TYPE xpmip_pba_sent_total counter", m)
            self.assertIn('xpmip_pba_sent_total{code="0",peer="mag-a",status="ACCEPTED"} 1', m)
            self.assertIn('xpmip_pbu_received_total{peer="mag-a"} 1', m)
            self.assertIn('xpmip_bindings{encap="gre",peer="mag-a",realm="1",state="registered"} 1', m)
            self.assertNotIn('session="', m, "no series per session (README \"Metrics\")")
            self.assertIn('xpmip_dataplane_events_total{counter="drop_unknown_key"}', m)
            r = subprocess.run([XPMIP, "attach", "-i", inst, "x"], capture_output=True, text=True)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("an LMA does not do 'attach'", r.stderr)
        finally:
            LmaTest.tearDownClass()

    def test_show_from_the_pins_without_an_agent(self):
        inst = f"show{os.getpid()}"
        tool = dptest.TOOL
        subprocess.run([tool, "-i", inst, "load", "--role", "lma"], check=True, capture_output=True)
        try:
            session = {"id": 7, "encap": "gre", "gre_keys": True, "realm": 1, "hoa": "10.0.0.7",
                       "paths": [{"local": "192.0.2.1", "remote": "192.0.2.10", "key_downlink": 11,
                                  "key_uplink": 22}]}
            subprocess.run([tool, "-i", inst, "session", "add", "-"], input=json.dumps(session), text=True,
                           check=True, capture_output=True)
            s = json.loads(self.show("sessions", "-i", inst, "--json").stdout)
            self.assertEqual((s[0]["id"], s[0]["paths"][0]["key_uplink"]), (7, 22))
            self.assertIn("10.0.0.7", self.show("sessions", "-i", inst).stdout)
            r = self.show("bindings", "-i", inst, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("bindings live in the agent", r.stderr)
        finally:
            subprocess.run([tool, "-i", inst, "unload"], capture_output=True)


class LmaShutdownTest(unittest.TestCase):
    def test_sigterm_unloads_the_data_plane(self):
        LmaTest.setUpClass()
        inst = LmaTest.instance
        try:
            self.assertTrue(os.path.isdir(f"/sys/fs/bpf/xpmip/{inst}"))
            LmaTest.lma_proc.send_signal(signal.SIGTERM)
            self.assertEqual(LmaTest.lma_proc.wait(timeout=10), 0)
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/xpmip/{inst}"), "pins left behind")
            self.assertIn("shutting down", LmaTest.log_text())
        finally:
            LmaTest.tearDownClass()


class LmaUnderIpNetnsExecTest(unittest.TestCase):
    def test_ip_netns_exec_pins_on_the_hosts_bpffs(self):
        # `ip netns exec` gives the agent a /sys without bpffs: it joins its caller's mount namespace, so the
        # pins are where bpftool and a restarted agent look for them.
        LmaTest.launch = "ip-netns-exec"
        try:
            LmaTest.setUpClass()
            inst = LmaTest.instance
            self.assertIn("joined the caller's mount namespace", LmaTest.log_text())
            self.assertTrue(os.path.exists(f"/sys/fs/bpf/xpmip/{inst}/sessions"), "pins on the host's bpffs")
            r = subprocess.run(["bpftool", "map", "show", "pinned", f"/sys/fs/bpf/xpmip/{inst}/sessions"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            LmaTest.lma_proc.send_signal(signal.SIGTERM)
            self.assertEqual(LmaTest.lma_proc.wait(timeout=10), 0)
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/xpmip/{inst}"), "pins left behind")
        finally:
            LmaTest.launch = "nsenter"
            LmaTest.tearDownClass()


if __name__ == "__main__":
    XPMIP = os.environ["XPMIP_BIN"]
    dptest.TOOL = os.environ["XPMIP_DP"]
    unittest.main(verbosity=2)
