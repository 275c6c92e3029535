#!/usr/bin/env python3
"""The MAG as a real process (`xpmip mag -c ...`) in a network namespace.

ScriptedLma: the LMA is a script. PBUs the MAG sends are parsed by scapy; the PBAs it gets back
are built by scapy with each status and option combination of RFC 5845 §4.2 / §7.3, and the
MAG's data plane session is read back through its pinned maps. Mobile nodes attach dynamically:
a frame from their MAC on the access link makes the access XDP program report them.

WithOurLma: MAG and LMA processes together, a mobile node pinging its correspondent through the
GRE tunnel they negotiated.

  [mn] eth0 ---- acc0 [MAG] wan0 ==== tun0 [LMA or script] core1 ---- [cn]
"""
import ipaddress
import json
import os
import re
import signal
import struct
import subprocess
import sys
import shutil
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dataplane"))
import dptest  # noqa: E402
from dptest import World, wait_for  # noqa: E402

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, MIP6MH_BA, MIP6MH_BE, MIP6MH_BU, MIP6OptMNID, MIP6OptUnknown  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

XPMIP = os.environ.get("XPMIP_BIN", "")
PEER = os.path.join(HERE, "..", "lma", "mh_peer.py")

LMA6, LMA4 = "2001:db8:ffff::1", "192.0.2.1"
MAG6, MAG4 = "2001:db8:ffff::10", "192.0.2.10"
BU_F, BU_T = 0x100, 0x080
BA_T = 0x10
N_MN = 12
# An agent is up when it has loaded and attached its BPF programs: a second or two on the host, but
# about 10 s in the VM suite (tests/vmtest), where the 6.1 kernel's verifier runs under TCG emulation,
# and 20 to 40 s there when the host's cores are busy. A process that exits is reported at once;
# only one that hangs waits this long.
START_TIMEOUT = 120


def mac_of(i):
    return f"02:00:00:00:01:{i:02x}"


def mn_id(i):
    return f"mn{i:02d}@op1.example"


def opt(t, data):
    return MIP6OptUnknown(otype=t, odata=data)


class Pbu:
    """A PBU the MAG sent, parsed by scapy."""

    def __init__(self, data: bytes, transport, src):
        self.transport, self.src = transport, src
        self.pkt = MIP6MH_BU(data)
        self.seq = self.pkt.seq
        self.lifetime = self.pkt.mhtime * 4
        self.flags = str(self.pkt.flags)
        self.t_flag = bool(self.pkt.reserved & BU_T)
        self.f_flag = bool(self.pkt.reserved & BU_F)
        self.options = {}
        for o in self.pkt.options:
            t = getattr(o, "otype", None)
            if t in (0, 1):
                continue
            self.options.setdefault(t, []).append(bytes(o)[2:])

    def has(self, t):
        return t in self.options

    def one(self, t):
        assert t in self.options, f"PBU has no option {t}: {self.pkt.options}"
        return self.options[t][0]

    @property
    def mn(self):
        return self.one(8)[1:].decode()

    @property
    def gre(self):
        if not self.has(33):
            return False, None
        d = self.one(33)
        return True, (struct.unpack("!I", d[2:6])[0] if len(d) == 6 else None)

    @property
    def hi(self):
        return self.one(23)[1]


class MagWorld:
    """Namespaces, the scripted peers and the MAG process; start_mag() (re)starts the MAG."""

    def __init__(self, tag, with_lma=False):
        self.w = World(tag)
        self.mag_proc = None
        self.lma_proc = None
        self.files = []
        self.mag_state = tempfile.mkdtemp(prefix="xpmip-mag-state-")   # (its journal, its restart counter)
        try:
            self._build(with_lma)
        except BaseException:
            self.close()
            raise

    def _build(self, with_lma):
        w = self.w
        self.lma_ns, self.mag_ns, self.mn_ns, self.cn_ns = (w.netns("lma"), w.netns("mag"), w.netns("mn"),
                                                           w.netns("cn"))
        w.veth(self.lma_ns, "tun0", self.mag_ns, "wan0")
        w.veth(self.mag_ns, "acc0", self.mn_ns, "eth0")
        w.veth(self.lma_ns, "core1", self.cn_ns, "eth0")
        for c in (f"addr add {LMA6}/64 dev tun0 nodad", f"addr add {LMA4}/24 dev tun0",
                  "addr add 198.51.100.1/24 dev core1"):
            self.lma_ns.ip(c)
        for c in (f"addr add {MAG6}/64 dev wan0 nodad", f"addr add {MAG4}/24 dev wan0"):
            self.mag_ns.ip(c)
        self.mag_ns.forwarding()
        self.lma_ns.forwarding()
        self.cn_ns.ip("addr add 198.51.100.2/24 dev eth0")
        self.cn_ns.ip("route add default via 198.51.100.1")
        self.cn_ns.end_host("eth0")
        self.mn_ns.end_host("eth0")
        self.mn_ns.sysctl("net.ipv6.conf.eth0.accept_ra=0")
        mag_mac, lma_mac = self.mag_ns.mac("wan0"), self.lma_ns.mac("tun0")
        for a, ns, dev, mac in ((MAG4, self.lma_ns, "tun0", mag_mac), (MAG6, self.lma_ns, "tun0", mag_mac),
                                (LMA4, self.mag_ns, "wan0", lma_mac), (LMA6, self.mag_ns, "wan0", lma_mac)):
            ns.ip(f"neigh replace {a} lladdr {mac} dev {dev} nud permanent")
        self.lma_ns.ip(f"neigh replace 198.51.100.2 lladdr {self.cn_ns.mac('eth0')} dev core1 nud permanent")
        if not with_lma:
            self.lma_ns.end_host("tun0")
            self.lma = self.lma_ns.popen("/usr/bin/python3", PEER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         text=True)
            self.ask(self.lma, op="open_udp", src=LMA4, sport=5436)
        self.mn = self.mn_ns.popen("/usr/bin/python3", PEER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    @staticmethod
    def ask(peer, **req):
        peer.stdin.write(json.dumps(req) + "\n")
        peer.stdin.flush()
        answer = json.loads(peer.stdout.readline())
        if not answer["ok"]:
            raise RuntimeError(answer)
        return answer

    def write(self, text, suffix):
        f = tempfile.NamedTemporaryFile("w", suffix=suffix, prefix="xpmip-", delete=False)
        f.write(text)
        f.close()
        self.files.append(f.name)
        return f.name

    def start_proc(self, ns, role, cfg_text, ready):
        cfg = self.write(cfg_text, ".yaml")
        log_path = cfg.replace(".yaml", ".log")
        self.files.append(log_path)
        log = open(log_path, "w")
        p = subprocess.Popen(["nsenter", f"--net=/run/netns/{ns.name}", XPMIP, role, "-c", cfg], stdout=log,
                             stderr=subprocess.STDOUT)
        log.close()
        self.w.processes.append(p)

        def text():
            with open(log_path) as f:
                return f.read()
        wait_for(lambda: ready in text() or p.poll() is not None, timeout=START_TIMEOUT)
        if p.poll() is not None or ready not in text():
            rc = p.poll()
            why = f"exit status {rc}" if rc is not None else f"no {ready!r} in its log after {START_TIMEOUT} s"
            raise RuntimeError(f"{role} did not start ({why}):\n{text()}")
        return p, text

    def start_mag(self, *, gre="keys", lma=LMA6, tlv=False, force_udp=False, lifetime=400, inactivity=0,
                  static=(), extra_mag="", extra_interfaces="", extra_top="", heartbeat=0, missing_heartbeats=3,
                  journal=False, shutdown_timeout=0):
        self.stop_mag()
        if hasattr(self, "lma"):
            self.ask(self.lma, op="drain")   # what the previous MAG sent, de-registrations included
        mns = "\n".join(f"  - {{id: {mn_id(i)}, mac: '{mac_of(i)}', interface: acc0, "
                        f"attach: {'static' if i in static else 'dynamic'}}}" for i in range(N_MN))
        self.mag_instance = f"{self.w.prefix}-mag"
        cfg = f"""instance: {self.mag_instance}
state_directory: {self.mag_state}
journal: {str(journal).lower()}   # (off by default here: each test starts from an empty list)
log_level: debug
mag:
  addresses: [{MAG6}, {MAG4}]
  lma: {lma}
  gre: {gre}
  tlv_header: {str(tlv).lower()}
  force_udp: {str(force_udp).lower()}
{extra_mag}interfaces:
  - {{name: wan0, kind: tunnel}}
  - {{name: acc0, kind: access}}
{extra_interfaces}{extra_top}timers:
  lifetime: {lifetime}
  inactivity_timeout: {inactivity}
  heartbeat_interval: {heartbeat}     # (0: off; the scripted LMA peer does not answer heartbeats)
  shutdown_timeout: {shutdown_timeout}   # (0: SIGTERM sends each de-registration once and exits)
  missing_heartbeats_allowed: {missing_heartbeats}
mobile_nodes:
{mns}
"""
        self.mag_proc, self.mag_log = self.start_proc(self.mag_ns, "mag", cfg, "up:")

    def stop_mag(self):
        if self.mag_proc and self.mag_proc.poll() is None:
            self.mag_proc.send_signal(signal.SIGTERM)
            try:
                self.mag_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.mag_proc.kill()
        self.mag_proc = None

    def show_up(self, i):
        """Mobile node i sends a frame on its access link (an IPv4 packet to its future router)."""
        frame = Ether(src=mac_of(i), dst=self.mag_ns.mac("acc0")) / IP(src="0.0.0.0", dst="10.255.255.255") / \
            UDP(sport=1, dport=9) / Raw(b"hello")
        self.ask(self.mn, op="frame", ifname="eth0", data=bytes(frame).hex())

    def sessions(self):
        out = self.mag_ns.enter(dptest.TOOL, "-i", self.mag_instance, "session", "show").stdout
        return json.loads(out)

    def close(self):
        self.stop_mag()
        if self.lma_proc and self.lma_proc.poll() is None:
            self.lma_proc.send_signal(signal.SIGTERM)
            try:
                self.lma_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.lma_proc.kill()
        self.w.close()
        for f in self.files:
            if os.path.exists(f):
                os.unlink(f)
        shutil.rmtree(self.mag_state, ignore_errors=True)


class ScriptedLma(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = MagWorld("mg")

    @classmethod
    def tearDownClass(cls):
        cls.m.close()

    def tearDown(self):
        self.m.stop_mag()

    def lma_ask(self, **req):
        return MagWorld.ask(self.m.lma, **req)

    def next_pbu(self, timeout=3.0, kinds=("mh6", "udp")):
        got = self.lma_ask(op="recv", kinds=list(kinds), timeout=timeout)["got"]
        if not got:
            return None
        g = got[0]
        p = Pbu(bytes.fromhex(g["data"]), "udp" if g["kind"] == "udp" else "ipv6", g["src"])
        p.to = g.get("to", [g.get("dst")])[0]
        return p

    def expect_pbu(self, timeout=3.0, **kw):
        p = self.next_pbu(timeout, **kw)
        self.assertIsNotNone(p, f"no PBU from the MAG\n{self.m.mag_log()[-3000:]}")
        return p

    def answer(self, pbu, status=0, gre=None, key=None, t=False, hnp="2001:db8:a:1::/64", hoa="10.0.0.2",
               plen=16, router="10.0.0.1", lifetime=None, seq=None, extra=(), src=LMA4, dst=MAG4):
        options = [MIP6OptMNID(subtype=1, id=pbu.mn.encode())]
        if status < 128:
            if hnp and pbu.has(22):
                net = ipaddress.IPv6Network(hnp)
                options.append(opt(22, bytes([0, net.prefixlen]) + net.network_address.packed))
            options += [opt(23, pbu.one(23)), opt(24, pbu.one(24))]
            if hoa and pbu.has(36):
                options.append(opt(37, bytes([0, plen << 2]) + ipaddress.IPv4Address(hoa).packed))
                options.append(opt(38, b"\0\0" + ipaddress.IPv4Address(router).packed))
        if gre == "key":
            options.append(opt(33, b"\0\0" + struct.pack("!I", key)))
        elif gre == "nokey":
            options.append(opt(33, b"\0\0"))
        options += list(extra)
        ba = MIP6MH_BA(status=status, flags="P", res2=BA_T if t else 0, seq=pbu.seq if seq is None else seq,
                       mhtime=(pbu.lifetime if lifetime is None else lifetime) // 4 if status < 128 else 0,
                       options=options)
        if pbu.transport == "ipv6":
            self.lma_ask(op="send6", packet=bytes(IPv6(src=LMA6, dst=MAG6) / ba).hex())
        else:
            ba.cksum = 0
            self.lma_ask(op="send_udp", src=src, sport=5436, dst=dst, dport=5436, data=bytes(ba).hex())

    def session_of(self, i):
        for s in self.m.sessions():
            if s.get("mn_mac") == mac_of(i):
                return s
        return None

    def wait_session(self, i, pred=lambda s: True):
        ok = wait_for(lambda: (s := self.session_of(i)) is not None and pred(s), timeout=5)
        s = self.session_of(i)
        self.assertTrue(ok, f"session of MN {i}: {s}\n{self.m.mag_log()[-2000:]}")
        return s

    # --- attach and the PBU (RFC 5213 §6.9.1.5, RFC 5844, RFC 5845 §3.1) -----------------------

    def test_dynamic_attach_sends_a_pbu_with_the_rfc5213_options_and_a_downlink_key(self):
        self.m.start_mag()
        self.assertIsNone(self.next_pbu(0.5), "dynamic MNs wait until they show up")
        self.m.show_up(1)
        p = self.expect_pbu()
        self.assertEqual(p.transport, "ipv6")
        self.assertEqual(p.src, MAG6)
        for f in "AHP":
            self.assertIn(f, p.flags)
        self.assertEqual(p.mn, mn_id(1))
        self.assertEqual(p.one(22)[1:], bytes(17), "HNP ::/0 asks for a prefix")
        self.assertEqual(p.hi, 1, "HI 1: attachment over a new interface")
        self.assertEqual(p.one(24)[1], 4)
        self.assertEqual(p.one(25)[2:], bytes.fromhex(mac_of(1).replace(":", "")))
        self.assertLess(abs(struct.unpack("!Q", p.one(27))[0] / 65536 - time.time()), 5)
        self.assertEqual(p.one(36)[2:], bytes(4), "IPv4 HoA Request 0.0.0.0")
        present, key = p.gre
        self.assertTrue(present)
        self.assertNotIn(key, (None, 0))
        self.assertEqual(p.lifetime, 400)
        ll = p.one(26)   # Link-local Address option: the MAG's on the MN's link (RFC 5213 §8.7)
        self.assertEqual(str(ipaddress.IPv6Address(ll)), self.m.mag_ns.run(
            "ip", "-6", "-o", "addr", "show", "dev", "acc0", "scope", "link").stdout.split()[3].split("/")[0])

    def test_gre_only_sends_the_option_without_key(self):
        self.m.start_mag(gre="gre-only")
        self.m.show_up(7)
        p = self.expect_pbu()
        self.assertEqual(p.gre, (True, None))
        self.assertEqual(len(p.one(33)), 2, "Length 2: GRE encapsulation mode only")

    def test_a_flapping_mn_is_held_to_3_pbus_per_second_with_the_lma_silent(self):
        self.m.start_mag()
        inst = self.m.mag_instance
        end = time.monotonic() + 2.0
        while time.monotonic() < end:     # attach / detach as fast as the CLI goes
            for cmd in ("attach", "detach"):
                subprocess.run([XPMIP, cmd, "-i", inst, mn_id(8)], capture_output=True)
        times = []
        while (p := self.next_pbu(timeout=1.2)) is not None:
            times.append(time.monotonic())
            self.assertEqual(p.mn, mn_id(8))
        self.assertGreaterEqual(len(times), 3)
        log = self.m.mag_log()
        sent = [ln for ln in log.splitlines() if f"PBU mn={mn_id(8)}" in ln]
        stamps = [time.mktime(time.strptime(ln[:19], "%Y-%m-%dT%H:%M:%S")) + float(ln[19:23]) for ln in sent]
        for i in range(len(stamps) - 3):
            self.assertGreaterEqual(stamps[i + 3] - stamps[i], 0.95, "4 PBUs within a second:\n" + "\n".join(sent))

    def test_unknown_station_is_ignored(self):
        self.m.start_mag()
        frame = Ether(src="02:00:00:00:99:99", dst=self.m.mag_ns.mac("acc0")) / IP(dst="10.255.255.255") / UDP()
        MagWorld.ask(self.m.mn, op="frame", ifname="eth0", data=bytes(frame).hex())
        self.assertIsNone(self.next_pbu(1.0))
        self.assertTrue(wait_for(lambda: "unknown station 02:00:00:00:99:99" in self.m.mag_log()))

    def test_downlink_keys_are_unique_and_never_0(self):
        self.m.start_mag()
        keys = []
        for i in (2, 3, 4):
            self.m.show_up(i)
            keys.append(self.expect_pbu().gre[1])
        self.assertEqual(len(set(keys)), 3)
        self.assertNotIn(0, keys)

    # --- PBA handling (RFC 5845 §4.2, §7.3) ---------------------------------------------------

    def test_4_2_success_with_uplink_key_installs_gre_with_both_keys(self):
        self.m.start_mag()
        self.m.show_up(1)
        p = self.expect_pbu()
        self.answer(p, gre="key", key=0xABCD)
        s = self.wait_session(1)
        self.assertEqual((s["encap"], s["gre_keys"]), ("gre", True))
        self.assertEqual((s["paths"][0]["key_downlink"], s["paths"][0]["key_uplink"]), (p.gre[1], 0xABCD))
        self.assertEqual((s["paths"][0]["local"], s["paths"][0]["remote"]), (MAG6, LMA6))
        self.assertEqual((s.get("hnp"), s.get("hoa")), ("2001:db8:a:1::/64", "10.0.0.2/32"))
        self.assertEqual(s["mn_interface"], "acc0")

    def test_metrics_count_pbus_pbas_by_code_and_bindings_by_state(self):
        """The MAG's Prometheus aggregates (README "Metrics"): PBUs per LMA, PBAs by code, the
        bindings gauge by state; no series per session."""
        self.m.start_mag(extra_top="metrics: 127.0.0.1:9432\n")
        self.m.show_up(1)
        self.answer(self.expect_pbu(), gre="key", key=0xABCE)
        self.wait_session(1)
        self.m.show_up(2)
        self.answer(self.expect_pbu(), status=129)   # administratively prohibited: not retried

        def scrape():
            return self.m.mag_ns.run("/usr/bin/python3", "-c", "import urllib.request;print(urllib.request.urlopen("
                                     "'http://127.0.0.1:9432/metrics',timeout=5).read().decode())").stdout
        lma = f'peer="{LMA6}"'
        want = [f'xpmip_pba_received_total{{code="0",{lma},status="ACCEPTED"}} 1',
                f'xpmip_pba_received_total{{code="129",{lma},status="ADMINISTRATIVELY_PROHIBITED"}} 1',
                f'xpmip_bindings{{encap="gre",{lma},state="registered"}} 1']
        # The gauge is published within 5 s of a change.
        self.assertTrue(dptest.wait_for(lambda: all(w in scrape() for w in want), timeout=20),
                        f"want {want} in:\n{scrape()}")
        m = scrape()
        pbus = re.search(rf'^xpmip_pbu_sent_total\{{{re.escape(lma)}\}} (\d+)', m, re.M)
        self.assertIsNotNone(pbus, m)
        self.assertGreaterEqual(int(pbus.group(1)), 2)
        self.assertNotIn("session=", m)

    def test_an_lma_answering_heartbeats_with_a_binding_error_keeps_the_path_up(self):
        """RFC 6275 §9.2 from an LMA without RFC 5847: a Binding Error (Status 2) for our Heartbeat
        says it does not do heartbeats, not that it is gone. The path stays up (comes back up if
        the misses took it down first) and no more requests go to that LMA."""
        self.m.start_mag(static=(1,), lifetime=3600, heartbeat=0.3, missing_heartbeats=2)
        p = self.expect_pbu()
        self.answer(p, gre="key", key=0xBE02)
        self.wait_session(1)
        refused = "does not do RFC 5847"

        def refuse_heartbeats():
            for g in self.lma_ask(op="recv", kinds=["mh6"], timeout=0.3, count=20)["got"]:
                if bytes.fromhex(g["data"])[2] == 13:
                    self.lma_ask(op="send6", packet=bytes(IPv6(src=LMA6, dst=MAG6) / MIP6MH_BE(status=2)).hex())
            return refused in self.m.mag_log()
        self.assertTrue(wait_for(refuse_heartbeats, timeout=15), self.m.mag_log()[-3000:])
        self.assertTrue(wait_for(lambda: self.session_of(1)["paths"][0]["up"], timeout=5), str(self.session_of(1)))
        # More than two misses' worth of time: no request, and the path still up.
        got = self.lma_ask(op="recv", kinds=["mh6"], timeout=2.0, count=50)["got"]
        self.assertEqual([g for g in got if bytes.fromhex(g["data"])[2] == 13], [], "asked again")
        self.assertTrue(self.session_of(1)["paths"][0]["up"], str(self.session_of(1)))

    def test_4_2_option_without_key_is_gre_mode_only(self):
        self.m.start_mag()
        self.m.show_up(2)
        self.answer(self.expect_pbu(), gre="nokey")
        s = self.wait_session(2)
        self.assertEqual((s["encap"], s["gre_keys"]), ("gre", False))

    def test_4_2_success_without_option_means_the_lma_has_no_gre_keys_and_stops_the_option(self):
        self.m.start_mag()
        self.m.show_up(3)
        self.answer(self.expect_pbu())           # status 0, no GRE Key option
        self.assertEqual(self.wait_session(3)["encap"], "ipip")
        self.m.show_up(4)
        p = self.expect_pbu()
        self.assertFalse(p.gre[0], "no GRE Key option toward that LMA any more")
        self.assertIn("does not support GRE keys", self.m.mag_log())

    def test_4_2_status_2_no_gre_for_the_session_and_never_again_for_it(self):
        self.m.start_mag(lifetime=8)
        self.m.show_up(5)
        self.answer(self.expect_pbu(), status=2, lifetime=4)
        self.assertEqual(self.wait_session(5)["encap"], "ipip")
        refresh = self.expect_pbu(timeout=6)     # at 80 % of the 4 s granted
        self.assertEqual(refresh.mn, mn_id(5))
        self.assertEqual(refresh.hi, 5, "HI 5: re-registration")
        self.assertEqual(refresh.one(22)[1], 64, "the refresh names the prefix it holds")
        self.assertFalse(refresh.gre[0], "MUST NOT include the option again for this session")
        # Another MN still asks for GRE: status 2 was about one session.
        self.m.show_up(6)
        self.assertTrue(self.expect_pbu().gre[0])

    def test_4_2_status_163_resends_with_the_option(self):
        self.m.start_mag(lifetime=8)
        self.m.show_up(7)
        self.answer(self.expect_pbu(), status=2, lifetime=4)
        refresh = self.expect_pbu(timeout=6)
        self.assertFalse(refresh.gre[0])
        self.answer(refresh, status=163)
        again = self.expect_pbu(timeout=1.0)
        self.assertGreater(again.seq, refresh.seq)
        present, key = again.gre
        self.assertTrue(present, "resent with the GRE Key option")
        self.assertNotIn(key, (None, 0))

    def test_4_2_status_163_with_gre_disabled_raises_an_alarm_and_stops(self):
        self.m.start_mag(gre="off")
        self.m.show_up(8)
        p = self.expect_pbu()
        self.assertFalse(p.gre[0], "gre: off sends no option")
        self.answer(p, status=163)
        self.assertTrue(wait_for(lambda: "ALARM" in self.m.mag_log()), self.m.mag_log()[-2000:])
        self.assertIsNone(self.next_pbu(2.5), "no retry: GRE is disabled here")
        self.assertIsNone(self.session_of(8))

    def test_7_3_t_flag_over_udp_and_the_tlv_format(self):
        self.m.start_mag(lma=LMA4, tlv=True)
        self.m.show_up(1)
        p = self.expect_pbu()
        self.assertEqual(p.transport, "udp")
        self.assertTrue(p.t_flag, "T when GRE over UDP is asked for (RFC 5845 §7.3)")
        self.assertTrue(p.has(32), "the IPv4 CoA option over IPv4 transport")
        self.answer(p, gre="key", key=0x7001, t=True)
        s = self.wait_session(1)
        self.assertEqual(s["encap"], "udp-tlv-gre")
        self.assertEqual((s["paths"][0]["local"], s["paths"][0]["remote"]), (MAG4, LMA4))

    def test_7_3_status_3_is_gre_without_udp(self):
        self.m.start_mag(lma=LMA4, tlv=True)
        self.m.show_up(2)
        self.answer(self.expect_pbu(), status=3, gre="key", key=0x7002)
        s = self.wait_session(2)
        self.assertEqual((s["encap"], s["paths"][0]["key_uplink"]), ("gre", 0x7002))

    def test_7_3_t_in_the_pba_without_option_is_not_tlv(self):
        self.m.start_mag(lma=LMA4, tlv=True, force_udp=True)
        self.m.show_up(3)
        p = self.expect_pbu()
        self.assertTrue(p.f_flag)
        self.answer(p, status=2, t=True)
        self.assertEqual(self.wait_session(3)["encap"], "udp", "no GRE: UDP encapsulation (F)")

    # --- LMAs that are not xpmip ---------------------------------------------------------------

    def test_7_2_a_stray_t_flag_over_ipv6_changes_nothing_and_the_mn_stays(self):
        # RFC 5845 §7.2: the LMA MUST NOT set T unless the PBU did. Seen from another LMA: the MAG
        # then wrote a udp-tlv-gre session (refused over IPv6) and de-registered the MN for good.
        self.m.start_mag(lifetime=8)
        self.m.show_up(10)
        p = self.expect_pbu()
        self.assertFalse(p.t_flag)
        self.answer(p, gre="key", key=0x5151, t=True, lifetime=4)
        s = self.wait_session(10)
        self.assertEqual((s["encap"], s["paths"][0]["key_uplink"]), ("gre", 0x5151))
        refresh = self.expect_pbu(timeout=6)
        self.assertEqual((refresh.mn, refresh.hi, refresh.lifetime), (mn_id(10), 5, 8),
                         "a refresh, not a de-registration")
        self.answer(refresh, gre="key", key=0x5151, t=True, lifetime=4)
        self.assertEqual(self.wait_session(10)["encap"], "gre")
        self.assertEqual(self.m.mag_log().count("set the T flag in a PBA"), 1, "logged once")

    def test_an_all_zero_hnp_is_no_prefix_and_the_mag_keeps_reaching_its_lma(self):
        # RFC 5213 §6.9.1.2: ::/0 in a PBA assigns nothing (an LMA that echoes the request). A ::/0
        # session route captured the MAG's own traffic to the LMA: refreshes never left.
        self.m.start_mag(lifetime=8)
        self.m.show_up(11)
        self.answer(self.expect_pbu(), gre="key", key=0x6161, hnp="::/0", lifetime=4)
        s = self.wait_session(11)
        self.assertEqual((s.get("hnp"), s.get("hoa")), (None, "10.0.0.2/32"))
        refresh = self.expect_pbu(timeout=6)
        self.assertEqual((refresh.mn, refresh.hi), (mn_id(11), 5), "the refresh reached the LMA")
        self.assertIn("no prefix assigned", self.m.mag_log())

    def test_4_2_gre_on_request_offers_gre_after_163_only(self):
        self.m.start_mag(gre="on-request")
        self.m.show_up(0)
        p = self.expect_pbu()
        self.assertFalse(p.gre[0], "on-request: no GRE Key option at first")
        self.answer(p, status=163)
        again = self.expect_pbu(timeout=1.0)
        present, key = again.gre
        self.assertTrue(present, "resent with the GRE Key option (RFC 5845 §4.2)")
        self.assertNotIn(key, (None, 0))
        self.answer(again, gre="key", key=0x7171)
        s = self.wait_session(0)
        self.assertEqual((s["encap"], s["gre_keys"]), ("gre", True))
        self.assertNotIn("ALARM", self.m.mag_log())

    def test_changed_uplink_key_on_reregistration_is_taken(self):
        self.m.start_mag(lifetime=8)
        self.m.show_up(9)
        self.answer(self.expect_pbu(), gre="key", key=100, lifetime=4)
        self.wait_session(9, lambda s: s["paths"][0]["key_uplink"] == 100)
        refresh = self.expect_pbu(timeout=6)
        self.assertEqual(refresh.gre[0], True, "re-registration carries the GRE Key option with the downlink key")
        self.answer(refresh, gre="key", key=200, lifetime=4)
        self.wait_session(9, lambda s: s["paths"][0]["key_uplink"] == 200)
        self.assertIn("changed the uplink key 100 -> 200", self.m.mag_log())

    # --- retransmission and rejections --------------------------------------------------------

    def test_retransmission_doubles_from_1s_while_the_lma_is_silent(self):
        self.m.start_mag()
        self.m.show_up(10)
        times, seqs = [], []
        while len(times) < 4:
            p = self.expect_pbu(timeout=6)
            times.append(time.monotonic())
            seqs.append(p.seq)
        gaps = [b - a for a, b in zip(times, times[1:])]
        for gap, want in zip(gaps, (1, 2, 4)):
            self.assertAlmostEqual(gap, want, delta=0.35, msg=f"gaps {gaps}")
        self.assertEqual(seqs, sorted(set(seqs)), "each retransmission has a new sequence number")

    def test_at_most_3_pbus_per_second_per_mn(self):
        self.m.start_mag()
        self.m.show_up(11)
        times = []
        end = time.monotonic() + 2.5
        while time.monotonic() < end:     # every PBU answered at once with 163: immediate resends
            p = self.next_pbu(timeout=0.5)
            if p:
                times.append(time.monotonic())
                self.answer(p, status=163)
        self.assertGreaterEqual(len(times), 5, "the MAG resends after 163")
        for i in range(len(times) - 3):
            self.assertGreaterEqual(times[i + 3] - times[i], 0.95, f"4 PBUs within a second: {times}")

    def test_rejection_is_logged_by_name_and_retried_or_not(self):
        self.m.start_mag()
        self.m.show_up(1)
        self.answer(self.expect_pbu(), status=130)
        self.assertTrue(wait_for(lambda: "INSUFFICIENT_RESOURCES(130)" in self.m.mag_log()))
        retry = self.expect_pbu(timeout=2.5)
        self.answer(retry, status=154)
        self.assertTrue(wait_for(lambda: "MAG_NOT_AUTHORIZED_FOR_PROXY_REG(154)" in self.m.mag_log()))
        self.assertIsNone(self.next_pbu(3.0), "154 is not retried")

    def test_inactivity_detaches_with_a_deregistration_without_gre_option(self):
        self.m.start_mag(inactivity=2)
        self.m.show_up(2)
        self.answer(self.expect_pbu(), gre="key", key=0x42)
        self.wait_session(2)
        dereg = self.expect_pbu(timeout=6)
        self.assertEqual(dereg.lifetime, 0)
        self.assertFalse(dereg.gre[0], "RFC 5845 §4.2: no GRE Key option in the de-registration")
        self.answer(dereg)
        self.assertTrue(wait_for(lambda: self.session_of(2) is None))
        self.assertIn("no uplink traffic", self.m.mag_log())

    def test_attach_detach_and_show_from_the_command_line(self):
        self.m.start_mag()
        inst = self.m.mag_instance
        r = subprocess.run([XPMIP, "attach", "-i", inst, mn_id(6)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = self.expect_pbu()
        self.assertEqual(p.mn, mn_id(6))
        self.answer(p, gre="key", key=0x66)
        self.wait_session(6)
        b = json.loads(subprocess.run([XPMIP, "show", "bindings", "-i", inst, "--json"], capture_output=True,
                                      text=True, check=True).stdout)
        self.assertEqual([(x["mn"], x["state"], x["key_uplink"], x["key_downlink"]) for x in b],
                         [(mn_id(6), "registered", 0x66, p.gre[1])])
        r = subprocess.run([XPMIP, "detach", "-i", inst, mn_id(6)], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        dereg = self.expect_pbu()
        self.assertEqual((dereg.mn, dereg.lifetime), (mn_id(6), 0))
        self.assertIsNone(self.session_of(6))
        r = subprocess.run([XPMIP, "attach", "-i", inst, "nobody@x"], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("mobile node 'nobody@x' is not in", r.stderr)

    def test_a_pba_from_the_access_side_is_dropped_in_xdp_and_counted(self):
        """Issue 17, trust boundaries at the MAG: a PBA with our LMA's address sent from an access
        link never reaches the agent: XDP drops it on acc0 (drop_signaling)."""
        self.m.start_mag()
        inst = self.m.mag_instance
        def dropped():
            out = subprocess.run([XPMIP, "show", "stats", "-i", inst, "--json"], capture_output=True, text=True,
                                 check=True).stdout
            return json.loads(out)["drop_signaling"]
        before = dropped()
        pba = Ether(src=mac_of(3), dst=self.m.mag_ns.mac("acc0")) / IPv6(src=LMA6, dst=MAG6) / \
            MIP6MH_BA(seq=777, status=0)
        self.m.ask(self.m.mn, op="frame", ifname="eth0", data=bytes(pba).hex())
        self.assertTrue(wait_for(lambda: dropped() >= before + 1, timeout=10), f"drop_signaling {dropped()}")
        time.sleep(0.5)
        self.assertNotIn("seq=777", self.m.mag_log(), "the agent never saw it")

    def test_static_mn_registers_at_start_and_sigterm_deregisters_it(self):
        self.m.start_mag(static=(4,))
        p = self.expect_pbu()
        self.assertEqual(p.mn, mn_id(4))
        self.answer(p, gre="key", key=0x44)
        self.wait_session(4)
        inst = self.m.mag_instance
        self.m.mag_proc.send_signal(signal.SIGTERM)
        dereg = self.expect_pbu()
        self.assertEqual((dereg.mn, dereg.lifetime), (mn_id(4), 0))
        self.assertEqual(self.m.mag_proc.wait(timeout=10), 0)
        self.assertFalse(os.path.exists(f"/sys/fs/bpf/xpmip/{inst}"), "pins left behind")


UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "$router" dev "$interface"
    echo "bound $ip/$mask router $router" ;;
esac
"""


def our_lma_config(m, state, journal, ipv6_pool="2001:db8:a::/48", subscribers=None, timers=""):
    """Our LMA behind the MAG of `m`, GRE keys required, its state in `state`; its subscribers
    MN 1 unless given (a YAML block), `timers` a YAML block too."""
    subscribers = subscribers or f"mobile_nodes:\n  - {{id: {mn_id(1)}, realm: 1}}\n"
    return f"""instance: {m.w.prefix}-lma
state_directory: {state}
journal: {str(journal).lower()}
lma:
  addresses: [{LMA6}, {LMA4}]
  gre: keys-required
interfaces:
  - {{name: tun0, kind: tunnel}}
  - {{name: core1, kind: core, realm: 1}}
realms:
  - {{id: 1, interface: core1, ipv4_pool: 10.0.0.0/16, ipv6_pool: "{ipv6_pool}"}}
peers:
  - {{name: mag, addresses: [{MAG6}, {MAG4}]}}
""" + subscribers + timers


class WithOurLma(unittest.TestCase):
    def test_heartbeats_see_an_lma_restart_and_an_lma_that_went_silent(self):
        """RFC 5847 between our MAG and our LMA (issue 17): a kill -9 and restart of the LMA is seen
        by its Restart Counter and the MAG registers its MN again at once (not at 80 % of the
        lifetime); an LMA that stops answering takes the MN's path down in the data plane, and
        its return brings it up."""
        m = MagWorld("mh", with_lma=True)
        state = tempfile.mkdtemp(prefix="xpmip-hb-state-")
        try:
            lma_cfg = our_lma_config(m, state, journal=True)
            m.lma_proc, lma_log = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
            m.start_mag(static=(1,), lifetime=3600, heartbeat=0.3, missing_heartbeats=2, journal=True,
                        shutdown_timeout=5)
            ok = wait_for(lambda: any(s.get("mn_mac") == mac_of(1) for s in m.sessions()), timeout=10)
            self.assertTrue(ok, m.mag_log() + lma_log())
            before = [s for s in m.sessions() if s.get("mn_mac") == mac_of(1)][0]
            self.assertTrue(wait_for(lambda: "restart counter" in lma_log(), timeout=5), lma_log())

            m.lma_proc.kill()
            m.lma_proc.wait()
            m.lma_proc, lma_log = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
            self.assertTrue(wait_for(lambda: "restarted: 1 binding(s) registered again now" in m.mag_log(), timeout=15),
                            m.mag_log()[-3000:])
            self.assertTrue(wait_for(lambda: "PBA status=ACCEPTED" in lma_log(), timeout=10), lma_log()[-3000:])
            after = [s for s in m.sessions() if s.get("mn_mac") == mac_of(1)][0]
            self.assertEqual((after["hnp"], after["hoa"], after["paths"][0]["key_uplink"]),
                             (before["hnp"], before["hoa"], before["paths"][0]["key_uplink"]),
                             "the journal kept the binding: the same prefix, address and key")

            m.lma_proc.kill()   # silent from now on
            m.lma_proc.wait()
            self.assertTrue(wait_for(lambda: "path down" in m.mag_log(), timeout=15), m.mag_log()[-3000:])
            self.assertTrue(wait_for(lambda: not [s for s in m.sessions()
                                                  if s.get("mn_mac") == mac_of(1)][0]["paths"][0]["up"], timeout=5),
                            str(m.sessions()))
            m.lma_proc, lma_log = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
            self.assertTrue(wait_for(lambda: "answers again: path up" in m.mag_log(), timeout=15), m.mag_log()[-3000:])
            self.assertTrue(wait_for(lambda: [s for s in m.sessions()
                                              if s.get("mn_mac") == mac_of(1)][0]["paths"][0]["up"], timeout=5),
                            str(m.sessions()))
        finally:
            killed = m.lma_proc is not None and m.lma_proc.poll() is not None   # (failed while killed)
            m.close()
            if killed:
                subprocess.run([dptest.TOOL, "-i", f"{m.w.prefix}-lma", "unload"], capture_output=True)
            shutil.rmtree(state, ignore_errors=True)

    def test_rfc5846_revocation_from_the_lma_tears_down_both_ends(self):
        """`xpmip revoke` at our LMA (RFC 5846): --mn sends a per-MN BRI, our MAG tears the MN down
        (no de-registration) and answers success, and the LMA removes the binding and its session;
        --peer sends one global BRI and every binding of the MAG goes at both ends. A revocation
        the LMA cannot do is refused naming what is wrong, and changes nothing. `show peers` at both
        ends says each peer's addresses, bindings, heartbeat state and PBAs by status."""
        m = MagWorld("mv", with_lma=True)
        state = tempfile.mkdtemp(prefix="xpmip-rv-state-")
        try:
            lma_cfg = our_lma_config(m, state, journal=True,
                                     subscribers="mobile_node_domains:\n  - {domain: op1.example, realm: 1}\n")
            m.lma_proc, lma_log = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
            m.start_mag(static=(1, 2, 3), lifetime=3600, journal=True)
            lma = f"{m.w.prefix}-lma"

            def bindings(instance):
                r = subprocess.run([XPMIP, "show", "bindings", "-i", instance, "--json"], capture_output=True,
                                   text=True, check=True)
                return {b["mn"]: b for b in json.loads(r.stdout) if b["state"] == "registered"}

            def revoke(*args):
                return subprocess.run([XPMIP, "revoke", "-i", lma, *args], capture_output=True, text=True)
            everyone = {mn_id(i) for i in (1, 2, 3)}
            self.assertTrue(wait_for(lambda: set(bindings(lma)) == everyone, timeout=20), m.mag_log()[-3000:])
            self.assertTrue(wait_for(lambda: set(bindings(m.mag_instance)) == everyone, timeout=10))
            lma_sessions = lambda: len(json.loads(m.lma_ns.enter(dptest.TOOL, "-i", lma, "session", "show").stdout))  # noqa: E731
            self.assertEqual(lma_sessions(), 3)

            # `show peers` at both ends (issue 19): addresses, bindings, last heard, heartbeat, PBAs.
            def peers(instance):
                r = subprocess.run([XPMIP, "show", "peers", "-i", instance, "--json"], capture_output=True, text=True,
                                   check=True)
                return {p["peer"]: p for p in json.loads(r.stdout)}
            at_lma = peers(lma)["mag"]
            self.assertEqual((at_lma["addresses"], at_lma["bindings"]), ([MAG6, MAG4], 3))
            self.assertGreaterEqual(at_lma["pba_status"].get("0", 0), 3)
            self.assertIsNotNone(at_lma["last_heard_s_ago"])
            self.assertEqual([(h["address"], h["state"]) for h in at_lma["heartbeat"]],
                             [(MAG6, "up"), (MAG4, "not asked")], "asked once heard from; MAG4 never spoke")
            at_mag = peers(m.mag_instance)["lma"]
            self.assertEqual((at_mag["addresses"], at_mag["bindings"]), ([LMA6], 3))
            self.assertGreaterEqual(at_mag["pba_status"].get("0", 0), 3)
            self.assertEqual([h["state"] for h in at_mag["heartbeat"]], ["off"])
            table = subprocess.run([XPMIP, "show", "peers", "-i", lma], capture_output=True, text=True, check=True).stdout
            self.assertIn("PEER", table)
            self.assertRegex(table, rf"mag +{MAG6},{MAG4} +3 ")

            bad = revoke("--mn", "nobody@op1.example")
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("mn: 'nobody@op1.example' has no binding here", bad.stderr)
            bad = revoke("--peer", "mag", "--trigger", "1")
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("trigger: 1 (Administrative Reason) does not revoke all of a peer's bindings", bad.stderr)

            r = revoke("--mn", mn_id(2))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("1 BRI(s) sent", r.stdout)
            self.assertTrue(wait_for(lambda: mn_id(2) not in bindings(lma), timeout=10), lma_log()[-3000:])
            self.assertIn("status=0 (success)", lma_log())
            self.assertNotIn(mn_id(2), bindings(m.mag_instance))
            self.assertIn(f"mobile node {mn_id(2)} revoked by the LMA (Administrative Reason)", m.mag_log())
            deregs = [ln for ln in m.mag_log().splitlines() if f"PBU mn={mn_id(2)} " in ln and "lifetime=0s" in ln]
            self.assertEqual(deregs, [], "no de-registration: the LMA revoked it")
            self.assertEqual(set(bindings(lma)), {mn_id(1), mn_id(3)})
            self.assertEqual(lma_sessions(), 2)
            self.assertEqual(len([s for s in m.sessions() if s.get("mn_mac") == mac_of(2)]), 0)

            r = revoke("--peer", "mag")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(wait_for(lambda: not bindings(lma), timeout=10), lma_log()[-3000:])
            self.assertEqual(bindings(m.mag_instance), {})
            self.assertEqual(lma_sessions(), 0)
            self.assertEqual(m.sessions(), [])
        finally:
            m.close()
            shutil.rmtree(state, ignore_errors=True)

    """MAG and LMA processes negotiate GRE keys; a real MN gets its IPv4 home address by DHCP and
    its IPv6 address by SLAAC from the MAG's Router Advertisement, then pings its correspondent
    through the tunnel over both."""

    def test_mn_autoconfigures_and_pings_its_correspondent_through_the_gre_tunnel(self):
        m = MagWorld("mw", with_lma=True)
        state = tempfile.mkdtemp(prefix="xpmip-mw-state-")   # (its restart counter)
        try:
            lma_cfg = our_lma_config(m, state, journal=False)
            m.cn_ns.ip("addr add 2001:db8:cc::2/64 dev eth0 nodad")
            m.cn_ns.ip("route add default via 2001:db8:cc::1")
            m.lma_ns.ip("addr add 2001:db8:cc::1/64 dev core1 nodad")
            m.lma_ns.ip(f"neigh replace 2001:db8:cc::2 lladdr {m.cn_ns.mac('eth0')} dev core1 nud permanent")
            m.lma_proc, lma_log = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
            # The MN: its MAC as configured, SLAAC on, no address yet.
            m.mn_ns.ip(f"link set eth0 address {mac_of(1)}")
            m.mn_ns.sysctl("net.ipv6.conf.eth0.accept_ra=2", "net.ipv6.conf.eth0.autoconf=1")
            m.start_mag(static=(1,), journal=True, shutdown_timeout=5)
            ok = wait_for(lambda: any(s.get("mn_mac") == mac_of(1) for s in m.sessions()), timeout=10)
            self.assertTrue(ok, m.mag_log() + lma_log())
            s = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]
            self.assertEqual((s["encap"], s["gre_keys"]), ("gre", True))
            hoa, hnp = s["hoa"].split("/")[0], s["hnp"]
            # IPv4 by DHCP from the MAG (the address the LMA assigned, RFC 5844 §3.3).
            script = m.write(UDHCPC_SCRIPT, ".sh")
            os.chmod(script, 0o755)
            r = m.mn_ns.run("busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T", "1", "-s", script,
                            check=False, timeout=30)
            self.assertIn(f"bound {hoa}/16 router 10.0.0.1", r.stdout, r.stdout + r.stderr + m.mag_log()[-1500:])
            # IPv6 by SLAAC from the MAG's RA with the HNP (RFC 5213 §6.7).
            net = ipaddress.IPv6Network(hnp)

            def slaac():   # a global address in the HNP, past DAD (a tentative one is not a source yet)
                out = m.mn_ns.run("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global").stdout
                return [a for line in out.splitlines() if "tentative" not in line
                        for a in line.split() if "/" in a and ipaddress.IPv6Interface(a).ip in net]
            self.assertTrue(wait_for(slaac, timeout=10), m.mn_ns.run("ip", "-6", "addr").stdout)
            self.assertIn("default via fe80::", m.mn_ns.run("ip", "-6", "route").stdout)
            r = m.mn_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2", check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + m.mag_log()[-1500:])
            r6 = m.mn_ns.run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "2001:db8:cc::2", check=False)
            self.assertEqual(r6.returncode, 0, r6.stdout + r6.stderr + m.mag_log()[-1500:])
            # Path MTU: the RA advertises the WAN MTU less the tunnel (1500 - 40 IPv6 - 8 GRE with a
            # key), and an IPv4 packet too big with DF gets "fragmentation needed" from the MAG.
            self.assertEqual(m.mn_ns.run("cat", "/proc/sys/net/ipv6/conf/eth0/mtu").stdout.strip(), "1452")
            r = m.mn_ns.run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1472", "198.51.100.2", check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("1452", r.stdout + r.stderr, r.stdout + r.stderr)
            r = m.mn_ns.run("ping", "-c", "1", "-W", "2", "-M", "do", "-s", "1424", "198.51.100.2", check=False)
            self.assertEqual(r.returncode, 0, "what fits goes through: " + r.stdout)
            counters = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]["counters"]
            self.assertGreaterEqual(counters["uplink"]["packets"], 6)
            self.assertGreaterEqual(counters["downlink"]["packets"], 6)

            # SIGHUP: both agents re-read their configuration; sessions and traffic carry on.
            before = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]
            lma_file = [f for f in m.files if f.endswith(".yaml")][0]
            with open(lma_file) as f:
                text = f.read()
            with open(lma_file, "w") as f:
                f.write(text.replace("lma:\n", "log_level: debug\nlma:\n", 1))
            m.lma_proc.send_signal(signal.SIGHUP)
            m.mag_proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "configuration reloaded" in lma_log() and
                                     "configuration reloaded" in m.mag_log()), lma_log()[-1000:])
            r = m.mn_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2", check=False)
            self.assertEqual(r.returncode, 0, r.stdout + m.mag_log()[-1500:])
            after = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]
            self.assertEqual(after["paths"][0]["key_uplink"], before["paths"][0]["key_uplink"])
            self.assertEqual(after["id"], before["id"])
            # A broken configuration is refused and the running one stays.
            with open(lma_file, "w") as f:
                f.write(text.replace("gre: keys-required", "gre: sometimes"))
            m.lma_proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "reload refused" in lma_log()), lma_log()[-1000:])
            self.assertIn("lma.gre: 'sometimes' is not one of", lma_log())
            self.assertIsNone(m.lma_proc.poll())
            r = m.mn_ns.run("ping", "-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2", check=False)
            self.assertEqual(r.returncode, 0, r.stdout)
        finally:
            m.close()
            shutil.rmtree(state, ignore_errors=True)


MAG4_2, LMA4_2 = "192.0.3.10", "192.0.3.1"   # the MAG's second WAN link (wan1 -- tun1)


class MultipathScriptedLma(ScriptedLma):
    """RFC 8278 at the MAG, against a scripted LMA: two WAN links, wan0 (RED, BID 1) and wan1
    (BLUE, BID 2), PBUs over IPv4/UDP 5436 to the LMA's address on each link."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.m
        m.w.veth(m.lma_ns, "tun1", m.mag_ns, "wan1")
        m.lma_ns.ip(f"addr add {LMA4_2}/24 dev tun1")
        m.mag_ns.ip(f"addr add {MAG4_2}/24 dev wan1")
        m.lma_ns.end_host("tun1")
        m.lma_ns.ip(f"neigh replace {MAG4_2} lladdr {m.mag_ns.mac('wan1')} dev tun1 nud permanent")
        m.mag_ns.ip(f"neigh replace {LMA4_2} lladdr {m.lma_ns.mac('tun1')} dev wan1 nud permanent")
        MagWorld.ask(m.lma, op="open_udp", src=LMA4_2, sport=5436)

    def start(self):
        self.m.start_mag(lma=LMA4, extra_mag="  identifier: mag-x.example\n",
                         extra_interfaces="  - {name: wan1, kind: tunnel}\n",
                         extra_top="labels:\n  - {name: red, id: 1, weight: 3}\n  - {name: blue, id: 2}\n"
                                   f"wan:\n  - {{interface: wan0, address: {MAG4}, label: red}}\n"
                                   f"  - {{interface: wan1, address: {MAG4_2}, lma: {LMA4_2}, label: blue}}\n"
                                   "steering:\n  - {name: web, proto: tcp, remote_ports: 80, labels: [red, blue]}\n")

    @staticmethod
    def mmb(p):
        d = p.one(63)
        return {"att": d[0], "label": d[1], "bid": d[2], "flags": d[3]}

    def echo_63(self, p, with_64=False):
        return [opt(63, p.one(63))] + ([opt(64, p.one(64))] if with_64 else [])

    def bindings(self):
        r = dptest.sh(XPMIP, "show", "bindings", "-i", self.m.mag_instance, "--json")
        return {b["mn"]: b for b in json.loads(r.stdout)}

    def first_path(self, i):
        self.start()
        self.m.show_up(i)
        p = self.expect_pbu(kinds=("udp",))
        self.assertEqual((p.src, p.to), (MAG4, LMA4), "the first PBU goes over wan0")
        return p

    def test_4_4_registers_one_path_first_then_the_other_after_the_lmas_63(self):
        p = self.first_path(1)
        self.assertEqual(self.mmb(p), {"att": 4, "label": 1, "bid": 1, "flags": 0})
        d = p.one(64)
        self.assertEqual((d[0], d[2:].decode()), (1, "mag-x.example"), "MAG Identifier option (NAI)")
        # §4.4: with the LMA's capability unknown, one path only until it answers (the first
        # path's retransmission after 1 s is all that may come meanwhile).
        deadline = time.time() + 1.5
        while (r := self.next_pbu(max(deadline - time.time(), 0.05), kinds=("udp",))) is not None:
            self.assertEqual((r.src, r.to, self.mmb(r)["bid"]), (MAG4, LMA4, 1), "nothing over wan1 yet")
            p = r
        key1 = p.gre[1]
        self.answer(p, gre="key", key=501, extra=self.echo_63(p))
        q = self.expect_pbu(kinds=("udp",))
        self.assertEqual((q.src, q.to), (MAG4_2, LMA4_2), "then a PBU over wan1 from its own proxy CoA")
        self.assertEqual(self.mmb(q), {"att": 4, "label": 2, "bid": 2, "flags": 0})
        self.assertTrue(q.has(64))
        self.assertEqual(q.one(36)[2:], ipaddress.IPv4Address("10.0.0.2").packed, "the HoA of the session")
        self.assertEqual(str(ipaddress.IPv6Address(q.one(22)[2:])), "2001:db8:a:1::", "and its HNP")
        key2 = q.gre[1]
        self.assertNotIn(key2, (None, key1), "a downlink key per binding (RFC 5845 keys are per binding)")
        self.answer(q, gre="key", key=502, extra=self.echo_63(q), src=LMA4_2, dst=MAG4_2)
        s = self.wait_session(1, lambda s: len(s["paths"]) == 2)
        self.assertEqual([(x["bid"], x["label"], x["local"], x["remote"], x.get("interface"), x["key_downlink"],
                           x["key_uplink"], x["weight"], x["up"]) for x in s["paths"]],
                         [(1, 1, MAG4, LMA4, "wan0", key1, 501, 3, True),
                          (2, 2, MAG4_2, LMA4_2, "wan1", key2, 502, 1, True)])
        self.assertEqual(s["policy"], 1, "the steering rules apply to the session")
        b = self.bindings()[mn_id(1)]
        self.assertTrue(b["multipath"])
        self.assertEqual([(x["label_name"], x["state"]) for x in b["paths"]], [("red", "registered"),
                                                                                ("blue", "registered")])
        # Carrier: wan1 down takes its path down in the data plane at once, and back.
        self.m.lma_ns.ip("link set tun1 down")
        try:
            self.wait_session(1, lambda s: [x["up"] for x in s["paths"]] == [True, False])
        finally:
            self.m.lma_ns.ip("link set tun1 up")
        self.wait_session(1, lambda s: [x["up"] for x in s["paths"]] == [True, True])
        # Detach: each binding is de-registered by its Binding-Id.
        dptest.sh(XPMIP, "detach", "-i", self.m.mag_instance, mn_id(1))
        got = {}
        deadline = time.time() + 5   # (3 PBUs per second per MN: one may wait for its turn)
        while len(got) < 2 and (d := self.next_pbu(max(deadline - time.time(), 0.05), kinds=("udp",))):
            self.assertEqual(d.lifetime, 0)
            got[self.mmb(d)["bid"]] = (d.src, d.to)
        self.assertEqual(got, {1: (MAG4, LMA4), 2: (MAG4_2, LMA4_2)}, self.m.mag_log()[-3000:])

    def test_an_mn_arriving_while_wan0_has_no_carrier_registers_over_wan1_first(self):
        m = self.m

        def wan0(up):
            m.lma_ns.ip(f"link set tun0 {'up' if up else 'down'}")   # wan0's carrier
            if up:   # (admin down flushed the permanent neighbours)
                for a, ns, dev, mac in ((MAG4, m.lma_ns, "tun0", m.mag_ns.mac("wan0")),
                                        (LMA4, m.mag_ns, "wan0", m.lma_ns.mac("tun0"))):
                    ns.ip(f"neigh replace {a} lladdr {mac} dev {dev} nud permanent")
        wan0(False)
        try:
            self.start()
            m.show_up(5)
            p = self.expect_pbu(kinds=("udp",))
            self.assertEqual((p.src, p.to, self.mmb(p)["bid"]), (MAG4_2, LMA4_2, 2), "the first path with carrier")
            self.answer(p, gre="key", key=541, extra=self.echo_63(p), src=LMA4_2, dst=MAG4_2)
            s = self.wait_session(5)
            self.assertEqual([(x["bid"], x["up"]) for x in s["paths"]], [(2, True)])
            self.assertTrue(wait_for(lambda: "bid=1 label=red via wan0" in m.mag_log(), timeout=3),
                            "then it tries wan0")
        finally:
            wan0(True)
        q = self.expect_pbu(timeout=10, kinds=("udp",))   # a retransmission over wan0, now up
        self.assertEqual((q.src, self.mmb(q)["bid"]), (MAG4, 1))
        self.answer(q, gre="key", key=542, extra=self.echo_63(q))
        s = self.wait_session(5, lambda s: len(s["paths"]) == 2)
        self.assertEqual([(x["bid"], x["key_uplink"], x["up"]) for x in s["paths"]], [(1, 542, True), (2, 541, True)])

    def test_4_4_a_pba_echoing_63_and_64_is_taken_as_multipath_too(self):
        p = self.first_path(2)
        self.answer(p, gre="key", key=511, extra=self.echo_63(p, with_64=True))
        q = self.expect_pbu(kinds=("udp",))
        self.assertEqual((q.src, self.mmb(q)["bid"]), (MAG4_2, 2))

    def test_4_4_legacy_lma_without_63_disables_multipath_for_the_mn(self):
        p = self.first_path(3)
        self.answer(p, gre="key", key=521)   # a legacy LMA: no option 63
        s = self.wait_session(3)
        self.assertIsNone(self.next_pbu(1.5, kinds=("udp",)), "no PBU over the second path")
        self.assertEqual(len(s["paths"]), 1)
        self.assertFalse(self.bindings()[mn_id(3)]["multipath"])
        self.assertIn("legacy LMA", self.m.mag_log())
        dptest.sh(XPMIP, "detach", "-i", self.m.mag_instance, mn_id(3))
        d = self.expect_pbu(kinds=("udp",))
        self.assertEqual(d.lifetime, 0)
        self.assertFalse(d.has(63) or d.has(64), "multipath is off for this MN: no options 63/64 any more")

    def test_4_4_status_180_registers_again_without_the_options(self):
        p = self.first_path(4)
        self.answer(p, status=180, extra=self.echo_63(p, with_64=True))
        q = self.expect_pbu(kinds=("udp",))
        self.assertEqual((q.src, q.to), (MAG4, LMA4))
        self.assertFalse(q.has(63) or q.has(64), "after 180 the MN registers without multipath")
        self.answer(q, gre="key", key=531)
        s = self.wait_session(4)
        self.assertEqual(len(s["paths"]), 1)
        self.assertIsNone(self.next_pbu(1.2, kinds=("udp",)))


# The base class's tests run once, in ScriptedLma.
for _name in dir(ScriptedLma):
    if _name.startswith("test_"):
        setattr(MultipathScriptedLma, _name, None)


if __name__ == "__main__":
    XPMIP = os.environ["XPMIP_BIN"]
    dptest.TOOL = os.environ["XPMIP_DP"]
    unittest.main(verbosity=2)
