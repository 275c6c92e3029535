#!/usr/bin/env python3
"""Every core for one tunnel (README "Every core for one tunnel"), end to end through the real
cpumap: one MAG-LMA pair, both spreading tunnel ingress over CPUs 0 and 1.

    mn (10.0.0.7) --acc0-- MAG --wan0====tun0-- LMA --core0-- cn (203.0.113.10)

Everything is sent from CPU 0, where a veth runs the whole receive path, so without spreading
the tunnel's far end would work on CPU 0 alone. Numbered datagrams in several flows go both ways
in lock-step bursts (flow_order.py): every one must arrive, in order within its flow, some of
them decapsulated on CPU 1 by the cpumap program (spread_received) and the others on CPU 0.
The vector suite (test_bpf_vectors.py, test_zz_spread_*) checks the decision packet by packet.
"""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from dptest import World  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLOW_ORDER = os.path.join(HERE, "flow_order.py")
PY = "/usr/bin/python3"
MAG4, LMA4 = "192.0.2.10", "192.0.2.1"
HOA, GW4, CN4, CORE4 = "10.0.0.7", "10.0.0.1", "203.0.113.10", "203.0.113.1"
MN_MAC, ACC_MAC, WAN_MAC, TUN_MAC = "02:00:00:00:0a:07", "02:00:00:00:ac:01", "02:00:00:00:0b:01", "02:00:00:00:0a:01"
CORE_MAC, CN_MAC = "02:00:00:00:c0:01", "02:00:00:00:c0:10"
KEY_UL, KEY_DL = 0x200A, 0x100A


@unittest.skipIf((os.cpu_count() or 1) < 2, "one CPU: nothing to spread over")
class SpreadEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = World("sp")
        try:
            cls.build(w)
        except BaseException:
            w.close()
            raise

    @classmethod
    def build(cls, w):
        mn, mag, lma, cn = (w.netns(n) for n in ("mn", "mag", "lma", "cn"))
        cls.ns = {"mn": mn, "mag": mag, "lma": lma, "cn": cn}
        w.veth(mn, "eth0", mag, "acc0", a_mac=MN_MAC, b_mac=ACC_MAC)
        w.veth(mag, "wan0", lma, "tun0", a_mac=WAN_MAC, b_mac=TUN_MAC)
        w.veth(lma, "core0", cn, "eth0", a_mac=CORE_MAC, b_mac=CN_MAC)
        mn.end_host("eth0")
        cn.end_host("eth0")
        mn.ip(f"addr add {HOA}/24 dev eth0")
        mn.ip(f"route add default via {GW4}")
        mn.ip(f"neigh replace {GW4} lladdr {ACC_MAC} dev eth0 nud permanent")
        cn.ip(f"addr add {CN4}/24 dev eth0")
        cn.ip(f"route add default via {CORE4}")
        cn.ip(f"neigh replace {CORE4} lladdr {CORE_MAC} dev eth0 nud permanent")
        for c in (f"addr add {GW4}/24 dev acc0", f"addr add {MAG4}/24 dev wan0",
                  f"neigh replace {LMA4} lladdr {TUN_MAC} dev wan0 nud permanent",
                  f"neigh replace {HOA} lladdr {MN_MAC} dev acc0 nud permanent"):
            mag.ip(c)
        for c in (f"addr add {LMA4}/24 dev tun0", f"addr add {CORE4}/24 dev core0",
                  f"neigh replace {MAG4} lladdr {WAN_MAC} dev tun0 nud permanent",
                  f"neigh replace {CN4} lladdr {CN_MAC} dev core0 nud permanent"):
            lma.ip(c)
        mag.forwarding()
        lma.forwarding()
        cls.lma = w.instance(lma, "lma", "lma", ["tun0:tunnel", "core0:core:1"], spread_cpus="0,1")
        cls.mag = w.instance(mag, "mag", "mag", ["wan0:tunnel", "acc0:access"], spread_cpus="0,1")
        common = dict(id=1, encap="gre", gre_keys=True, realm=1, hoa=HOA)
        cls.lma.add_session(dict(common, mn_interface="core0", paths=[
            dict(local=LMA4, remote=MAG4, key_uplink=KEY_UL, key_downlink=KEY_DL)]))
        cls.mag.add_session(dict(common, mn_mac=MN_MAC, mn_interface="acc0", paths=[
            dict(local=MAG4, remote=LMA4, key_uplink=KEY_UL, key_downlink=KEY_DL)]))

    @classmethod
    def tearDownClass(cls):
        cls.world.close()

    def send(self, src_ns, src, dst_ns, dst, port):
        out = subprocess.run(
            [PY, FLOW_ORDER, "--from", self.ns[src_ns].name, "--src", src, "--to", self.ns[dst_ns].name,
             "--dst", dst, "--port", str(port), "--flows", "16", "--bursts", "150", "--burst", "64", "--cpu", "0"],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def check_direction(self, far, src_ns, src, dst_ns, dst, port, direction):
        far.stats(reset=True)
        before = far.session(1)["counters"]["uplink" if far is self.lma else "downlink"]["packets"]
        r = self.send(src_ns, src, dst_ns, dst, port)
        stats = far.nonzero_stats(reset=True)
        after = far.session(1)["counters"]["uplink" if far is self.lma else "downlink"]["packets"]
        what = f"{direction}: {r}, {far.name} counters {stats}"
        self.assertEqual((r["lost"], r["reordered"]), (0, 0), what)
        self.assertEqual(r["received"], 150 * 64, what)
        self.assertEqual(after - before, r["sent"], f"{what}: every datagram decapsulated by the session")
        handed = stats.get("cpu_spread", 0)
        self.assertEqual(stats.get("spread_received", 0), handed, f"{what}: each hand-off taken on CPU 1")
        self.assertGreater(handed, 0, f"{what}: no flow went to CPU 1")
        self.assertLess(handed, r["sent"], f"{what}: no flow stayed on CPU 0")
        drops = {k: v for k, v in stats.items() if k.startswith("drop_")}
        self.assertEqual(drops, {}, what)

    def test_uplink_spread_at_the_lma_keeps_every_flow_whole_and_in_order(self):
        self.check_direction(self.lma, "mn", HOA, "cn", CN4, 9001, "uplink")

    def test_downlink_spread_at_the_mag_keeps_every_flow_whole_and_in_order(self):
        self.check_direction(self.mag, "cn", CN4, "mn", HOA, 9002, "downlink")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (namespaces, BPF)")
    unittest.main(verbosity=2)
