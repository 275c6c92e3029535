#!/usr/bin/env python3
"""Every BPF program of the data plane loads (passes the verifier of the running kernel), attaches
to every kind of interface in both roles, runs, is replaced in place on a restart, and is gone
after unload. Meant for the VM (tests/vmtest/suite): Debian's 6.1 kernel, whose verifier is older
and stricter in places than the build host's.

    ns lma: tun0 (tunnel) core0 (core, realm 1) corel2 (core-l2, realm 1)
    ns mag: wan0 (tunnel) acc0 (access)
    ns peer: the far ends (no IPv6, an XDP_PASS program: bpf/xdp_pass.bpf.o)

Checked against the kernel's own view (iproute2, tc, bpftool), not only xpmip-dp's: XDP in native
(driver) mode, the tc programs in direct-action mode on clsact ingress everywhere and egress on
tunnel interfaces only.

Run as root; XPMIP_DP names the xpmip-dp tool, XPMIP_XDP_PASS bpf/xdp_pass.bpf.o.
"""
import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dataplane"))
import dptest  # noqa: E402
from dptest import TC_ACT_OK, XDP_PASS, World, sh  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import raw  # noqa: E402

XDP_ATTACHED_DRV = 1   # iproute2's "mode" of an XDP program (1 driver, 2 generic/skb, 3 offloaded)
PROGS = {"xdp": "xpmip_xdp", "tc-ingress": "xpmip_tc_ingress", "tc-egress": "xpmip_tc_egress"}
LMA_IFS = {"tun0": "tunnel", "core0": "core", "corel2": "core-l2"}
MAG_IFS = {"wan0": "tunnel", "acc0": "access"}

# A frame no gateway interface takes (a MAC that is none of ours, UDP to the discard port): every
# hook must let it be (XDP_PASS / TC_ACT_OK) unchanged.
FRAME = raw(Ether(src="02:00:00:00:09:98", dst="02:00:00:00:09:99") /
            IP(src="198.51.100.9", dst="198.51.100.10") / UDP(sport=9, dport=9))


def prog_table():
    """bpftool's list of loaded programs: {id: entry}."""
    return {p["id"]: p for p in json.loads(sh("bpftool", "prog", "show", "-j").stdout)}


class LoadAndAttach(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not dptest.TOOL:
            raise unittest.SkipTest("XPMIP_DP is not set")  # the suite always sets it
        w = cls.world = World("vl")
        try:
            cls.lma_ns, cls.mag_ns, peer = w.netns("lma"), w.netns("mag"), w.netns("peer")
            peer.quiet()
            for ns, ifs in ((cls.lma_ns, LMA_IFS), (cls.mag_ns, MAG_IFS)):
                for name in ifs:
                    far = f"p-{name}"
                    w.veth(ns, name, peer, far)
                    peer.run("ip", "link", "set", "dev", far, "xdpdrv", "obj", dptest.XDP_PASS_OBJ, "sec", "xdp")
            cls.lma = w.instance(cls.lma_ns, "lma", "lma", ["tun0:tunnel", "core0:core:1", "corel2:core-l2:1"])
            cls.mag = w.instance(cls.mag_ns, "mag", "mag", ["wan0:tunnel", "acc0:access"])
            cls.peer = peer
        except Exception:
            w.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.world.close()

    # -- the kernel's view ----------------------------------------------------------------------

    def xdp_of(self, ns, ifname):
        link = json.loads(ns.run("ip", "-j", "-d", "link", "show", "dev", ifname).stdout)[0]
        return link.get("xdp")

    def prog_name(self, prog_id):
        """The full name of a program (bpftool takes it from BTF)."""
        return json.loads(sh("bpftool", "prog", "show", "id", str(prog_id), "-j").stdout)["name"]

    def tc_progs(self, ns, ifname, direction):
        """Names of the BPF programs on a clsact hook, with their direct-action flag."""
        r = ns.run("tc", "-j", "filter", "show", "dev", ifname, direction, check=False)
        if r.returncode != 0 or not r.stdout.strip():
            return {}
        out = {}
        for f in json.loads(r.stdout):
            opts = f.get("options") or {}
            prog = opts.get("prog") or {}
            if f.get("kind") == "bpf" and prog.get("id"):
                # The kernel keeps 15 characters of a name (BPF_OBJ_NAME_LEN): take bpftool's.
                out[self.prog_name(prog["id"])] = bool(opts.get("direct-action"))
        return out

    def check_attached(self, ns, ifs):
        for ifname, kind in ifs.items():
            with self.subTest(interface=ifname, kind=kind):
                xdp = self.xdp_of(ns, ifname)
                self.assertIsNotNone(xdp, f"{ifname}: no XDP program attached")
                self.assertEqual(xdp.get("mode"), XDP_ATTACHED_DRV, f"{ifname}: XDP not in driver mode: {xdp}")
                self.assertEqual(xdp["prog"]["name"], PROGS["xdp"])
                self.assertEqual(self.tc_progs(ns, ifname, "ingress"), {PROGS["tc-ingress"]: True},
                                 f"{ifname}: clsact ingress")
                want_egress = {PROGS["tc-egress"]: True} if kind == "tunnel" else {}
                self.assertEqual(self.tc_progs(ns, ifname, "egress"), want_egress, f"{ifname}: clsact egress")

    # -- tests (in name order) ------------------------------------------------------------------

    def test_1_every_program_loads_and_attaches_in_both_roles(self):
        progs = prog_table()
        names = [p.get("name") for p in progs.values()]
        for prog in PROGS.values():
            # One copy per instance: two instances are loaded.
            self.assertEqual(names.count(prog), 2, f"{prog} loaded {names.count(prog)} times: {sorted(names)}")
        self.assertIn("xpmip_xdp_pass", names)
        for p in progs.values():
            if p.get("name") in PROGS.values():
                print(f"  {p['name']}: {p.get('type')}, {p.get('bytes_xlated')} B xlated, "
                      f"{p.get('verified_insns', '?')} instructions verified", file=sys.stderr)
        self.check_attached(self.lma_ns, LMA_IFS)
        self.check_attached(self.mag_ns, MAG_IFS)
        # The tool's own view agrees.
        for inst, ifs in ((self.lma, LMA_IFS), (self.mag, MAG_IFS)):
            ns = inst.ns
            shown = json.loads(inst.dp("interfaces").stdout)
            self.assertEqual({i["ifindex"]: i["kind"] for i in shown}, {ns.ifindex(n): k for n, k in ifs.items()},
                             f"xpmip-dp interfaces of {inst.name}: {shown}")

    def test_2_every_hook_runs_a_packet(self):
        """BPF_PROG_TEST_RUN of each attached program: a frame for nobody is let through."""
        for inst, ifs in ((self.lma, LMA_IFS), (self.mag, MAG_IFS)):
            for ifname, kind in ifs.items():
                hooks = [("xdp", XDP_PASS), ("tc-ingress", TC_ACT_OK)]
                if kind == "tunnel":
                    hooks.append(("tc-egress", TC_ACT_OK))
                for hook, verdict in hooks:
                    with self.subTest(instance=inst.name, interface=ifname, hook=hook):
                        rv, out = inst.run(ifname, hook, FRAME)
                        self.assertEqual(rv, verdict)
                        self.assertEqual(out, FRAME)

    def test_3_a_restart_replaces_the_programs_in_place(self):
        """A second load of the LMA (pinned maps) swaps the programs under the same XDP link."""
        old = {i: self.xdp_of(self.lma_ns, i)["prog"]["id"] for i in LMA_IFS}
        links = {l["id"]: l for l in json.loads(sh("bpftool", "link", "show", "-j").stdout)}
        old_links = {lid for lid, l in links.items() if l.get("prog_id") in old.values()}
        self.assertTrue(old_links, "the XDP programs are not attached through bpf links")
        self.lma.dp("load", "--role", "lma", "--sessions", "1024", "--attach", "tun0:tunnel",
                    "--attach", "core0:core:1", "--attach", "corel2:core-l2:1")
        new = {i: self.xdp_of(self.lma_ns, i)["prog"]["id"] for i in LMA_IFS}
        for i in LMA_IFS:
            self.assertNotEqual(new[i], old[i], f"{i}: XDP program not replaced")
        links = {l["id"]: l for l in json.loads(sh("bpftool", "link", "show", "-j").stdout)}
        self.assertEqual({lid for lid, l in links.items() if l.get("prog_id") in new.values()}, old_links,
                         "the restart did not reuse the XDP links")
        self.assertFalse(set(old.values()) & set(prog_table()), "the replaced programs are still loaded")
        self.check_attached(self.lma_ns, LMA_IFS)

    def test_4_unload_leaves_nothing(self):
        for inst, ns, ifs in ((self.lma, self.lma_ns, LMA_IFS), (self.mag, self.mag_ns, MAG_IFS)):
            inst.dp("unload")
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/xpmip/{inst.name}"), f"{inst.name}: pins left")
            for ifname in ifs:
                self.assertIsNone(self.xdp_of(ns, ifname), f"{ifname}: XDP still attached")
                self.assertEqual(self.tc_progs(ns, ifname, "ingress"), {}, f"{ifname}: tc ingress left")
                self.assertEqual(self.tc_progs(ns, ifname, "egress"), {}, f"{ifname}: tc egress left")
        left = [p["name"] for p in prog_table().values() if p.get("name") in PROGS.values()]
        self.assertEqual(left, [], "programs still loaded after unload")


if __name__ == "__main__":
    unittest.main(verbosity=2)
