#!/usr/bin/env python3
"""The loader's promises and path steering, with the real programs in a namespace.

Loader: a restarted instance reuses its pinned maps (sessions survive, programs are replaced in
place, and not one packet of a flood reaches the stack across reloads), a size that differs from the pinned maps is refused with a clear error, a full map is
reported, and an interface without native XDP is refused unless generic mode is asked for.

Steering (RFC 8278 §3): a policy rule picks the preferred label, falls back to the next label's
paths when its own are down, keeps every packet of a flow on one path, and may spread packets
by weight. Checked with BPF_PROG_TEST_RUN on the LMA's core interface: the GRE key of the output
says which path carried the packet.
"""
import json
import os
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from dptest import BENCH, XDP_REDIRECT, World, sh  # noqa: E402

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw, raw  # noqa: E402

LMA4, MAG_A, MAG_B = "192.0.2.1", "192.0.2.10", "192.0.2.11"
MN, CN = "10.0.0.7", "198.51.100.20"
RED, BLUE = 1, 2
RELOADS_UNDER_TRAFFIC = 4
KEY = {1: 0x1111, 2: 0x2222, 3: 0x3333}   # downlink key by Binding-Id


def session(policy=0, paths=(1, 2), up=None, weights=None):
    up = up or {}
    weights = weights or {}
    ps = []
    for bid in paths:
        ps.append(dict(local=LMA4, remote=MAG_A if bid != 2 else MAG_B, bid=bid,
                       label=RED if bid in (1, 3) else BLUE, key_downlink=KEY[bid], key_uplink=0x9000 + bid,
                       up=up.get(bid, True), weight=weights.get(bid, 1)))
    return dict(id=1, encap="gre", gre_keys=True, realm=1, hoa=MN, mn_interface="core0", policy=policy, paths=ps)


class LoaderAndSteering(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        w = cls.world = World("ls")
        try:
            lma, peer = cls.lma_ns, cls.peer = w.netns("lma"), w.netns("peer")
            peer.quiet()
            w.veth(lma, "tun0", peer, "wan0")
            w.veth(lma, "core0", peer, "cn0")
            lma.forwarding()
            lma.ip(f"addr add {LMA4}/24 dev tun0")
            lma.ip("addr add 198.51.100.1/24 dev core0")
            for mag in (MAG_A, MAG_B):
                lma.ip(f"neigh replace {mag} lladdr 02:00:00:00:00:0a dev tun0 nud permanent")
            cls.core_mac = lma.mac("core0")
            cls.lma = w.instance(lma, "lma", "lma", ["tun0:tunnel", "core0:core:1"], sessions=4)
            cls.lma.set_policy(1, {"rules": [
                {"proto": 6, "remote_ports": [80, 80], "labels": [RED, BLUE]},          # HTTP on RED, else BLUE
                {"proto": 17, "remote_ports": [5000, 5000], "mode": "per-packet", "labels": []},
                {"proto": 17, "remote_ports": [6000, 6000], "labels": [RED], "strict": True},
            ]})
        except Exception:
            w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.world.close()

    def setUp(self):
        for s in self.lma.sessions():
            self.lma.del_session(s["id"])

    def key_of(self, l4):
        """Send CN -> MN through core0; return the GRE key of the encapsulated packet. Rules are
        in the MN's terms: the correspondent's port is this packet's source port."""
        frame = raw(Ether(src="02:00:00:00:00:99", dst=self.core_mac) / IP(src=CN, dst=MN) / l4)
        verdict, out = self.lma.run("core0", "xdp", frame)
        self.assertEqual(verdict, XDP_REDIRECT, out.hex())
        # Ethernet 14 + IPv4 20 + GRE flags/proto 4, then the key.
        return struct.unpack("!I", out[38:42])[0]

    # -- loader -------------------------------------------------------------------------------

    def test_restart_reuses_pinned_maps_and_keeps_sessions(self):
        self.lma.add_session(session())
        before = self.key_of(TCP(sport=80, dport=40000))
        # Load again (a restarted agent): programs replaced in place, maps reused.
        self.lma.dp("load", "--role", "lma", "--sessions", "4", "--attach", "tun0:tunnel", "--attach", "core0:core:1")
        self.assertEqual([s["id"] for s in self.lma.sessions()], [1])
        self.assertEqual(self.key_of(TCP(sport=80, dport=40000)), before)
        prog = sh("ip", "netns", "exec", self.lma_ns.name, "ip", "-d", "link", "show", "core0").stdout
        self.assertIn("xdp", prog)

    def test_a_reload_under_traffic_hands_no_packet_to_the_stack(self):
        """A restarted agent loads again while traffic flows (issue 17: 0 packets lost across a
        restart). Every interface entry it writes must be whole at every instant: an entry written
        first without its MAC (then completed) made the running program take frames sent to our
        MAC for someone else's and pass them to the stack, which dropped them (mag.restart lost a
        packet so). Counted by nftables in the LMA's stack (prerouting: before any routing
        decision), where not one packet of the flow may arrive."""
        self.lma.add_session(session(paths=(1,)))
        self.peer.end_host("wan0")
        rules = ("table inet seen {\n  chain pre {\n    type filter hook prerouting priority -500;\n"
                 f"    ip daddr {MN} udp dport 9 counter\n  }}\n}}\n")
        self.lma_ns.run("nft", "-f", "-", input=rules)
        flood = raw(Ether(src="02:00:00:00:00:99", dst=self.core_mac) / IP(src=CN, dst=MN) /
                    UDP(sport=40000, dport=9) / Raw(bytes(18)))
        gen = self.peer.popen(BENCH, "send", "--interface", "cn0", "--cpus", "0", "--seconds", "600",
                              "--frame", flood.hex(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            before = self.wan0_rx()
            for _ in range(RELOADS_UNDER_TRAFFIC):
                self.lma.reload()
            carried = self.wan0_rx() - before
        finally:
            gen.terminate()
            gen.wait()
            out = self.lma_ns.run("nft", "list", "table", "inet", "seen").stdout
            self.lma_ns.run("nft", "delete", "table", "inet", "seen")
        self.assertGreater(carried, 10000, f"the flood was carried by the data plane ({gen.stderr.read()})")
        stack = int(out.split("counter packets ")[1].split()[0])
        self.assertEqual(stack, 0, f"{stack} of the flow's packets reached the LMA's stack across "
                                   f"{RELOADS_UNDER_TRAFFIC} reloads ({carried} carried)")

    def wan0_rx(self):
        return json.loads(self.peer.run("ip", "-s", "-j", "link", "show", "wan0").stdout)[0]["stats64"]["rx"]["packets"]

    def test_other_sizes_than_the_pinned_maps_are_refused(self):
        r = self.lma.dp("load", "--role", "lma", "--sessions", "8", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("pinned map sessions is sized for 4 but the configuration asks for 8 (limits.sessions)", r.stderr)

    def test_pinned_maps_of_another_layout_or_map_abi_version_are_refused_by_name(self):
        """Issue 17 (upgrades): a build whose map layout differs refuses the pinned maps, naming the
        map and the sizes, instead of misreading them; so does one of another map ABI version."""
        inst = self.world.instance(self.lma_ns, "abi", "lma", [], sessions=4)
        pins = f"/sys/fs/bpf/xpmip/{inst.name}"
        try:
            # The config map as a build before the ABI field made it: value 24 octets, not 28.
            os.unlink(f"{pins}/config")
            sh("bpftool", "map", "create", f"{pins}/config", "type", "array", "key", "4", "value", "24",
               "entries", "1", "name", "config")
            r = inst.dp(*inst.load_args, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(f"pinned map {pins}/config was made by another build: key 4 / value 24 octets", r.stderr)
            self.assertIn("this build's are 4 / 28", r.stderr)
            # The right layout but another map ABI version in it.
            inst.unload()
            inst.reload()
            value = struct.pack("<7I", 1, 5, 0, 1, 0, 0, 0)   # role lma, ..., abi_version 0
            sh("bpftool", "map", "update", "pinned", f"{pins}/config", "key", "0", "0", "0", "0",
               "value", *[str(b) for b in value])
            r = inst.dp(*inst.load_args, check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("its pinned maps have map ABI version 0, this build's is 2", r.stderr)
        finally:
            inst.unload()

    def test_other_role_than_the_pinned_instance_is_refused(self):
        r = self.lma.dp("load", "--role", "mag", "--sessions", "4", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("was loaded as lma", r.stderr)

    def test_a_full_session_table_is_reported(self):
        for i in range(1, 5):
            s = session()
            s.update(id=i, hoa=f"10.0.0.{10 + i}")
            for p in s["paths"]:
                p["key_uplink"] += 16 * i
            s["paths"][0]["key_uplink"] = i   # our key of the first path is the session's id (index)
            self.lma.add_session(s)
        s = session()
        s.update(id=5, hoa="10.0.0.99")
        for p in s["paths"]:
            p["key_uplink"] += 1000
        r = self.lma.try_add_session(s)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("session id 5 is outside 1..4 (limits.sessions)", r.stderr)
        self.assertEqual(len(self.lma.sessions()), 4, "nothing half-written")

    def test_native_xdp_is_required_unless_generic_is_asked_for(self):
        # The loopback device has no native XDP.
        inst = self.world.instance(self.peer, "gen", "lma", [], sessions=4)
        r = inst.dp("load", "--role", "lma", "--sessions", "4", "--attach", "lo:core", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("interface lo: its driver has no native XDP", r.stderr)
        inst.dp("load", "--role", "lma", "--sessions", "4", "--attach", "lo:core", "--generic")
        self.assertIn("xdpgeneric", self.peer.run("ip", "link", "show", "lo").stdout)

    # -- steering -----------------------------------------------------------------------------

    def test_without_a_policy_a_flow_stays_on_one_path(self):
        self.lma.add_session(session())
        for sport in range(40000, 40020):
            keys = {self.key_of(UDP(sport=sport, dport=9)) for _ in range(5)}
            self.assertEqual(len(keys), 1, f"flow {sport} split over {keys}")

    def test_http_prefers_red_and_falls_back_to_blue(self):
        self.lma.add_session(session(policy=1))
        self.assertEqual(self.key_of(TCP(sport=80, dport=41000)), KEY[1])
        self.lma.set_path(1, 1, False)     # RED down: HTTP moves to BLUE
        self.assertEqual(self.key_of(TCP(sport=80, dport=41000)), KEY[2])
        self.lma.set_path(1, 1, True)      # and comes back
        self.assertEqual(self.key_of(TCP(sport=80, dport=41000)), KEY[1])

    def test_flows_spread_over_paths_of_a_label_and_only_move_when_their_path_goes_down(self):
        # Two RED paths (BIDs 1 and 3): HTTP flows use both; taking BID 3 down moves only its flows.
        self.lma.add_session(session(policy=1, paths=(1, 2, 3)))
        flows = {sport: self.key_of(TCP(sport=80, dport=sport)) for sport in range(42000, 42064)}
        self.assertEqual(set(flows.values()), {KEY[1], KEY[3]}, "rendezvous hashing uses every RED path")
        self.lma.set_path(1, 3, False)
        for sport, key in flows.items():
            now = self.key_of(TCP(sport=80, dport=sport))
            self.assertEqual(now, KEY[1])
            if key == KEY[1]:
                self.assertEqual(now, key, "a flow on a path that stayed up did not move")
        self.lma.set_path(1, 3, True)
        self.assertEqual({sport: self.key_of(TCP(sport=80, dport=sport)) for sport in flows}, flows,
                         "flows return to their path when it comes back")

    def test_strict_rule_drops_when_its_label_is_down(self):
        self.lma.add_session(session(policy=1))
        self.assertEqual(self.key_of(UDP(sport=6000, dport=1)), KEY[1])
        self.lma.set_path(1, 1, False)
        frame = raw(Ether(src="02:00:00:00:00:99", dst=self.core_mac) / IP(src=CN, dst=MN) / UDP(sport=6000, dport=1))
        self.lma.stats(reset=True)
        verdict, _ = self.lma.run("core0", "xdp", frame)
        self.assertEqual(verdict, 1)  # XDP_DROP
        self.assertEqual(self.lma.nonzero_stats(), {"drop_no_path": 1})

    def test_per_packet_rule_spreads_by_weight_3_to_1(self):
        self.lma.add_session(session(policy=1, weights={1: 3, 2: 1}))
        n = 2000
        counts = {KEY[1]: 0, KEY[2]: 0}
        for _ in range(n):
            counts[self.key_of(UDP(sport=5000, dport=7) / Raw(b"x"))] += 1
        share = counts[KEY[1]] / n
        self.assertAlmostEqual(share, 0.75, delta=0.05, msg=f"{counts}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
