#!/usr/bin/env python3
"""The data plane end to end, in network namespaces, with sessions written through the loader
API (xpmip-dp): mobile nodes behind a MAG, a transit bridge where tshark watches the tunnel,
an LMA, and one correspondent network per realm.

    mnA (10.0.0.7, realm 1) --accA\\                          /coreA-- cnA 203.0.113.10 "cn-A"
    mnB (10.0.0.7, realm 2) --accB-- MAG --wan0== br0 ==tun0-- LMA --coreB-- cnB 203.0.113.10 "cn-B"
    mnC (10.9.0.7, realm 0) --accC/     (transit: tshark)        \\coreC-- cnC 198.51.100.10 "cn-C"

mnA and mnB hold the same private IPv4 address in two realms (RFC 5845 Figure 1); so do their
correspondents, which tell who they are.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from dptest import XDP_PASS_OBJ, World, sh, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "tcp_peer.py")
PY = "/usr/bin/python3"
MAG4, LMA4, MAG6, LMA6 = "192.0.2.10", "192.0.2.1", "2001:db8:100::10", "2001:db8:100::1"
SIZE = 2 * 1024 * 1024

MNS = {
    "A": dict(id=1, realm=1, hoa="10.0.0.7", gw4="10.0.0.1", hnp="2001:db8:a:1::", mac="02:00:00:00:0a:07",
              acc="accA", core="coreA", kd=0x100A, ku=0x200A, cn4="203.0.113.10", cn6="2001:db8:ca::10",
              core4="203.0.113.1", core6="2001:db8:ca::1"),
    "B": dict(id=2, realm=2, hoa="10.0.0.7", gw4="10.0.0.1", hnp="2001:db8:b:1::", mac="02:00:00:00:0b:07",
              acc="accB", core="coreB", kd=0x100B, ku=0x200B, cn4="203.0.113.10", cn6="2001:db8:cb::10",
              core4="203.0.113.1", core6="2001:db8:cb::1"),
    "C": dict(id=3, realm=0, hoa="10.9.0.7", gw4="10.9.0.1", hnp="2001:db8:c:1::", mac="02:00:00:00:0c:07",
              acc="accC", core="coreC", kd=0x100C, ku=0x200C, cn4="198.51.100.10", cn6="2001:db8:cc::10",
              core4="198.51.100.1", core6="2001:db8:cc::1"),
}

# (name, encap, outer IPv6?, GRE keys?)
VARIANTS = [
    ("ipip-over-ipv4", "ipip", False, False),
    ("ipip-over-ipv6", "ipip", True, False),
    ("udp-over-ipv4", "udp", False, False),
    ("gre-keys-over-ipv4", "gre", False, True),
    ("gre-keys-over-ipv6", "gre", True, True),
    ("gre-no-key-over-ipv4", "gre", False, False),
    ("gre-no-key-over-ipv6", "gre", True, False),
    ("udp-tlv-gre-keys-over-ipv4", "udp-tlv-gre", False, True),
]


def sessions(encap="gre", outer6=False, keyed=True, mns="ABC", mtu=0):
    lma, mag = [], []
    for k in mns:
        m = MNS[k]
        common = dict(id=m["id"], encap=encap, gre_keys=keyed, hoa=m["hoa"], hnp=m["hnp"] + "/64")
        lma_addr, mag_addr = (LMA6, MAG6) if outer6 else (LMA4, MAG4)
        keys = dict(key_downlink=m["kd"], key_uplink=m["ku"]) if keyed else {}
        lma.append(dict(common, realm=m["realm"], mn_interface=m["core"],
                        paths=[dict(local=lma_addr, remote=mag_addr, mtu=mtu, **keys)]))
        mag.append(dict(common, realm=m["realm"], mn_mac=m["mac"], mn_interface=m["acc"],
                        paths=[dict(local=mag_addr, remote=lma_addr, mtu=mtu, **keys)]))
    return lma, mag


class Capture:
    """tshark on the transit bridge; decode() reads fields back as JSON."""

    def __init__(self, ns, iface="br0"):
        fd, self.path = tempfile.mkstemp(suffix=".pcap")
        os.close(fd)
        self.proc = ns.popen("tshark", "-i", iface, "-w", self.path, "-q", stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        line = ""
        while "Capturing on" not in line:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError("tshark did not start")

    def stop(self):
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=10)

    def decode(self, display_filter, fields, decode_as=()):
        cmd = ["tshark", "-r", self.path, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
               "-Y", display_filter, "-T", "json"]
        for d in decode_as:
            cmd += ["-d", d]
        for f in fields:
            cmd += ["-e", f]
        out = sh(*cmd).stdout
        return [p["_source"]["layers"] for p in json.loads(out or "[]")]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
        os.unlink(self.path)


class DataplaneEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = World("xi")
        ns = cls.ns = {n: w.netns(n) for n in
                       ["mnA", "mnB", "mnC", "mag", "transit", "lma", "cnA", "cnB", "cnC"]}
        try:
            cls.build(w, ns)
        except Exception:
            w.close()
            raise

    @classmethod
    def build(cls, w, ns):
        mag, lma, tr = ns["mag"], ns["lma"], ns["transit"]
        for k, m in MNS.items():
            mn, cn = ns["mn" + k], ns["cn" + k]
            w.veth(mn, "eth0", mag, m["acc"], a_mac=m["mac"])
            w.veth(lma, m["core"], cn, "eth0")
            mn.end_host("eth0")
            cn.end_host("eth0")
            mn.ip(f"addr add {m['hoa']}/16 dev eth0")
            mn.ip(f"-6 addr add {m['hnp']}7/64 dev eth0 nodad")
            mn.ip(f"route add default via {m['gw4']}")
            mn.ip(f"-6 route add default via {m['hnp']}1")
            mag.ip(f"addr add {m['gw4']}/16 dev {m['acc']}")
            mag.ip(f"-6 addr add {m['hnp']}1/64 dev {m['acc']} nodad")
            lma.ip(f"addr add {m['core4']}/24 dev {m['core']}")
            lma.ip(f"-6 addr add {m['core6']}/64 dev {m['core']} nodad")
            cn.ip(f"addr add {m['cn4']}/24 dev eth0")
            cn.ip(f"-6 addr add {m['cn6']}/64 dev eth0 nodad")
            cn.ip(f"route add default via {m['core4']}")
            cn.ip(f"-6 route add default via {m['core6']}")
        w.veth(mag, "wan0", tr, "tm")
        w.veth(tr, "tl", lma, "tun0")
        tr.ip("link add br0 type bridge")
        for port in ("tm", "tl"):
            tr.ip(f"link set {port} master br0")
            # XDP_PASS so frames our XDP redirects into the link arrive at once, and no GRO: merged
            # tunnel packets would be re-segmented toward the gateway as CHECKSUM_PARTIAL, which
            # XDP cannot complete.
            tr.run("ip", "link", "set", "dev", port, "xdpdrv", "obj", XDP_PASS_OBJ, "sec", "xdp")
            tr.run("ethtool", "-K", port, "gro", "off")
        tr.ip("link set br0 up")
        mag.ip(f"addr add {MAG4}/24 dev wan0")
        mag.ip(f"-6 addr add {MAG6}/64 dev wan0 nodad")
        lma.ip(f"addr add {LMA4}/24 dev tun0")
        lma.ip(f"-6 addr add {LMA6}/64 dev tun0 nodad")
        mag.forwarding()
        lma.forwarding()
        cls.lma = w.instance(lma, "lma", "lma", ["tun0:tunnel", "coreA:core:1", "coreB:core:2", "coreC:core:0"])
        cls.mag = w.instance(mag, "mag", "mag", ["wan0:tunnel", "accA:access", "accB:access", "accC:access"])
        cls.servers = []
        for k, m in MNS.items():
            for addr, port in ((m["cn4"], 7000), (m["cn6"], 7006)):
                p = ns["cn" + k].popen(PY, PEER, "serve", addr, str(port), f"cn-{k}", str(SIZE),
                                       stdout=subprocess.PIPE, text=True)
                assert p.stdout.readline().strip() == "ready"
                cls.servers.append(p)

    @classmethod
    def tearDownClass(cls):
        for p in getattr(cls, "servers", []):
            p.kill()
            p.wait()
        cls.world.close()

    # -- helpers --------------------------------------------------------------------------------

    def provision(self, **kw):
        for inst in (self.lma, self.mag):
            for s in inst.sessions():
                inst.del_session(s["id"])
        lma, mag = sessions(**kw)
        for s in lma:
            self.lma.add_session(s)
        for s in mag:
            self.mag.add_session(s)

    def ping(self, k, six=False, count=2, size=None, df=False, check=True):
        m = MNS[k]
        args = ["ping", "-6" if six else "-4", "-c", str(count), "-i", "0.2", "-W", "2"]
        if size:
            args += ["-s", str(size)]
        if df:
            args += ["-M", "do"]
        r = self.ns["mn" + k].run(*args, m["cn6"] if six else m["cn4"], check=False)
        if check:
            self.assertEqual(r.returncode, 0, f"ping from MN {k}:\n{r.stdout}{r.stderr}")
        return r

    def fetch(self, k, six=False):
        m = MNS[k]
        r = self.ns["mn" + k].run(PY, PEER, "fetch", m["cn6"] if six else m["cn4"], "7006" if six else "7000",
                                  str(SIZE), check=False, timeout=60)
        self.assertEqual(r.returncode, 0, f"TCP from MN {k}: {r.stdout}{r.stderr}")
        return r.stdout.split()[0]

    # -- tests ----------------------------------------------------------------------------------

    def test_overlapping_realms_reach_their_own_correspondent_with_their_own_keys(self):
        """RFC 5845 Figure 1: the same private address in two realms, told apart by GRE keys."""
        self.provision(encap="gre", keyed=True)
        for k in "AB":
            m = MNS[k]
            with Capture(self.ns["transit"]) as cap:
                self.ping(k)
                self.assertEqual(self.fetch(k), f"cn-{k}")
                cap.stop()
                pkts = cap.decode("gre", ["ip.src", "gre.key", "gre.proto"])
            up = {int(p["gre.key"][0], 0) for p in pkts if p["ip.src"][0] == MAG4}
            down = {int(p["gre.key"][0], 0) for p in pkts if p["ip.src"][0] == LMA4}
            self.assertEqual(up, {m["ku"]}, f"uplink GRE keys of MN {k}")
            self.assertEqual(down, {m["kd"]}, f"downlink GRE keys of MN {k}")
            self.assertGreater(len(pkts), 100)

    def test_every_encapsulation_carries_ping_and_tcp_both_ways(self):
        for name, encap, outer6, keyed in VARIANTS:
            with self.subTest(name):
                # Key-less lookups cannot tell two realms' 10.0.0.7 apart: only A and C then.
                self.provision(encap=encap, outer6=outer6, keyed=keyed, mns="ABC" if keyed else "AC")
                with Capture(self.ns["transit"]) as cap:
                    for k in ("AC" if not keyed else "ABC"):
                        self.ping(k)
                        self.ping(k, six=True)
                        self.assertEqual(self.fetch(k), f"cn-{k}")
                        self.assertEqual(self.fetch(k, six=True), f"cn-{k}")
                    cap.stop()
                    self.check_format(cap, encap, outer6, keyed)

    def check_format(self, cap, encap, outer6, keyed):
        mag, lma = (MAG6, LMA6) if outer6 else (MAG4, LMA4)
        src_field = "ipv6.src" if outer6 else "ip.src"
        if encap == "gre":
            pkts = cap.decode("gre", [src_field, "gre.key", "gre.flags.key", "gre.proto"])
            self.assertTrue(pkts, "no GRE on the transit link")
            for p in pkts:
                self.assertEqual(p["gre.flags.key"][0] in ("1", "True"), keyed, p)
                if keyed:
                    k = int(p["gre.key"][0], 0)
                    want = {m["ku"] for m in MNS.values()} if p[src_field][0] == mag else \
                        {m["kd"] for m in MNS.values()}
                    self.assertIn(k, want, p)
            self.assertEqual({p[src_field][0] for p in pkts}, {mag, lma})
        elif encap == "ipip":
            flt = "ipv6.nxt == 4 or ipv6.nxt == 41" if outer6 else "ip.proto == 4 or ip.proto == 41"
            pkts = cap.decode(flt, [src_field])
            self.assertEqual({p[src_field][0] for p in pkts}, {mag, lma}, "IP-in-IP both ways")
        elif encap == "udp":
            pkts = cap.decode("udp.port == 5437", ["ip.src", "udp.srcport", "udp.dstport", "udp.checksum"],
                              decode_as=["udp.port==5437,ip"])
            self.assertEqual({p["ip.src"][0] for p in pkts}, {mag, lma})
            for p in pkts:
                self.assertEqual((p["udp.srcport"][0], p["udp.dstport"][0]), ("5437", "5437"))
                self.assertEqual(p["udp.checksum"][0], "0x0000")  # allowed over IPv4
        elif encap == "udp-tlv-gre":
            pkts = cap.decode("udp.port == 5437", ["ip.src", "udp.length", "data.data"])
            self.assertEqual({p["ip.src"][0] for p in pkts}, {mag, lma})
            for p in pkts:
                payload = bytes.fromhex(p["data.data"][0].replace(":", ""))
                udp_len = int(p["udp.length"][0])
                # RFC 5845 §7.1: Type 0, Next Header 47 (GRE), Length = octets after the TLV header.
                self.assertEqual(payload[0], 0)
                self.assertEqual(payload[1], 47)
                self.assertEqual(int.from_bytes(payload[2:4], "big"), udp_len - 8 - 4)
                self.assertEqual(payload[4:6], b"\x20\x00")  # GRE with K

    def test_unresolved_neighbour_goes_through_tc_and_gets_resolved(self):
        self.provision(encap="gre", keyed=True)
        for ns, devs in ((self.ns["lma"], ["tun0", "coreA"]), (self.ns["mag"], ["wan0", "accA"])):
            for d in devs:
                ns.ip(f"neigh flush dev {d}")
        # What the agent does on the neighbour events (README "Route cache"): without it the
        # uplink would keep the cached route, with the old neighbour, for up to a second.
        self.lma.dp("invalidate-routes")
        self.lma.stats(reset=True)
        self.mag.stats(reset=True)
        self.ping("A", count=3)
        lma, mag = self.lma.nonzero_stats(), self.mag.nonzero_stats()
        self.assertGreaterEqual(lma.get("pass_no_neigh", 0), 1, lma)
        self.assertGreaterEqual(mag.get("pass_no_neigh", 0), 1, mag)
        self.assertGreaterEqual(lma.get("tc_encap", 0) + lma.get("tc_decap", 0), 1, lma)
        # Resolved now: the next pings stay in XDP.
        self.ping("A", count=3)
        self.assertEqual(self.lma.nonzero_stats().get("pass_no_neigh", 0), 0)

    def test_stack_emitted_tcp_with_gso_is_encapsulated_by_tc_egress(self):
        """The LMA's own TCP to MN C (a GSO stream routed to tun0) is encapsulated by the tc
        egress program and arrives intact."""
        self.provision(encap="gre", keyed=True)
        lma, mn = self.ns["lma"], self.ns["mnC"]
        # As the agent installs MN routes: the path MTU less the encapsulation (20 + 8 for GRE
        # with a key over IPv4), so the stack's own segments fit once encapsulated.
        lma.ip(f"route replace {MNS['C']['hoa']}/32 via {MAG4} dev tun0 mtu 1472")
        # GSO on, TX checksum offload off: TCP still hands GSO bursts to tc, and the kernel
        # segments them after encapsulation computing checksums (a veth would pass partial
        # checksums on to the MAG's XDP, which cannot complete them; a NIC completes them).
        lma.run("ethtool", "-K", "tun0", "gso", "on", "tx", "off")
        try:
            sink = mn.popen(PY, PEER, "sink", MNS["C"]["hoa"], "7100", stdout=subprocess.PIPE, text=True)
            self.addCleanup(sink.kill)
            self.assertEqual(sink.stdout.readline().strip(), "ready")
            self.lma.stats(reset=True)
            with Capture(self.ns["transit"]) as cap:
                lma.run(PY, PEER, "send", MNS["C"]["hoa"], "7100", str(4 * SIZE), timeout=60)
                got = sink.stdout.readline().split()
                sink.wait(timeout=10)
                cap.stop()
                data = cap.decode(f"gre && ip.src == {LMA4} && tcp.len > 0", ["gre.key"])
                keys = {int(p["gre.key"][0], 0) for p in data}
            self.assertEqual(got, [str(4 * SIZE), "intact"])
            self.assertEqual(keys, {MNS["C"]["kd"]})
            encapsulated = self.lma.nonzero_stats().get("tc_encap", 0)
            self.assertGreater(encapsulated, 0)
            # Fewer packets went through tc than reached the wire: tc encapsulated GSO bursts,
            # segmented afterwards.
            self.assertLess(encapsulated, len(data))
        finally:
            lma.ip(f"route del {MNS['C']['hoa']}/32")

    def test_mn_traffic_to_the_lma_itself_is_delivered_locally(self):
        self.provision(encap="gre", keyed=True)
        r = self.ns["mnC"].run("ping", "-c", "2", "-i", "0.2", "-W", "2", LMA4, check=False)
        # The LMA answers toward 10.9.0.7 by its route through the tunnel.
        self.ns["lma"].ip(f"route replace {MNS['C']['hoa']}/32 via {MAG4} dev tun0")
        try:
            r = self.ns["mnC"].run("ping", "-c", "2", "-i", "0.2", "-W", "2", LMA4, check=False)
            self.assertEqual(r.returncode, 0, r.stdout)
        finally:
            self.ns["lma"].ip(f"route del {MNS['C']['hoa']}/32")

    def test_too_big_after_encapsulation_answers_with_icmp(self):
        self.provision(encap="gre", keyed=True, mtu=1400)
        self.lma.stats(reset=True)
        self.mag.stats(reset=True)
        # 1400 - 20 (IPv4) - 8 (GRE with key) = 1372 octets of inner packet fit.
        r = self.ping("A", size=1400, df=True, count=1, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("1372", r.stdout + r.stderr, r.stdout)
        r6 = self.ping("A", six=True, size=1400, count=1, check=False)
        self.assertIn("1372", r6.stdout + r6.stderr, r6.stdout)
        st = self.mag.nonzero_stats()
        self.assertGreaterEqual(st.get("icmp_sent", 0), 2, st)
        self.assertGreaterEqual(st.get("drop_too_big", 0), 2, st)
        self.ping("A", size=1300, df=True)  # what fits still passes

    def test_traffic_stops_after_removal_and_resumes_after_re_adding(self):
        self.provision(encap="gre", keyed=True)
        self.ping("A")
        lma_sessions, _ = sessions(encap="gre", keyed=True, mns="A")
        self.lma.del_session(MNS["A"]["id"])
        self.lma.stats(reset=True)
        r = self.ping("A", count=2, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertGreaterEqual(self.lma.nonzero_stats().get("drop_unknown_key", 0), 2)
        self.lma.add_session(lma_sessions[0])
        self.ping("A")

    def test_key_less_sessions_cannot_share_an_address_from_one_mag(self):
        self.provision(encap="gre", keyed=False, mns="A")
        lma, _ = sessions(encap="gre", keyed=False, mns="B")
        r = self.lma.try_add_session(lma[0])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already belongs to session 1", r.stderr)

    def test_bpftool_dump_shows_named_fields(self):
        self.provision(encap="gre", keyed=True)
        pin = f"/sys/fs/bpf/xpmip/{self.lma.name}"
        dump = json.loads(sh("bpftool", "map", "dump", "pinned", f"{pin}/sessions", "-j").stdout)
        # An array indexed by session id: a free slot reads id 0 (README "Data plane at scale").
        by_id = {e["formatted"]["key"]: e["formatted"]["value"] for e in dump if e["formatted"]["value"]["id"]}
        self.assertEqual(set(by_id), {1, 2, 3})
        self.assertTrue(all(v["id"] == k for k, v in by_id.items()), by_id)
        a = by_id[1]
        self.assertEqual(a["realm"], 1)
        self.assertEqual(a["npaths"], 1)
        self.assertEqual(a["path"]["key_downlink"], MNS["A"]["kd"])
        self.assertEqual(a["path"]["key_uplink"], MNS["A"]["ku"])
        # Keys that are not a session's index (these MNs' uplink keys, 0x200B) are in tunnel_keys.
        keys = json.loads(sh("bpftool", "map", "dump", "pinned", f"{pin}/tunnel_keys", "-j").stdout)
        self.assertIn({"scope": 0, "key": MNS["B"]["ku"]}, [e["formatted"]["key"] for e in keys])
        text = sh("bpftool", "map", "dump", "pinned", f"{pin}/sessions").stdout
        self.assertIn('"key_downlink":', text.replace(" ", ""))


if __name__ == "__main__":
    unittest.main(verbosity=2)
