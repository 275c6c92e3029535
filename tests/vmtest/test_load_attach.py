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
import socket
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dataplane"))
import dptest  # noqa: E402
from dptest import TC_ACT_OK, XDP_PASS, World, sh, wait_for  # noqa: E402

XDP_ATTACHED_DRV = 1   # iproute2's "mode" of an XDP program (1 driver, 2 generic/skb, 3 offloaded)
PROGS = {"xdp": "xpmip_xdp", "tc-ingress": "xpmip_tc_ingress", "tc-egress": "xpmip_tc_egress"}
LMA_IFS = {"tun0": "tunnel", "core0": "core", "corel2": "core-l2"}
MAG_IFS = {"wan0": "tunnel", "acc0": "access"}



def udp_frame(src_mac, dst_mac, src, dst, port):
    """Ethernet / IPv4 (DF, TTL 64, correct checksum) / UDP with no payload and no checksum. Built
    by hand: importing scapy takes over 10 s in the VM."""
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0x4000, 64, 17, 0,
                               socket.inet_aton(src), socket.inet_aton(dst)))
    total = sum(struct.unpack("!10H", ip))
    total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF)
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + bytes(ip) + struct.pack("!HHHH", port, port, 8, 0)


# A frame no gateway interface takes (a MAC that is none of ours, UDP to the discard port): every
# hook must let it be (XDP_PASS / TC_ACT_OK) unchanged.
FRAME = udp_frame("02:00:00:00:09:98", "02:00:00:00:09:99", "198.51.100.9", "198.51.100.10", 9)


def prog_table():
    """bpftool's list of loaded programs: {id: entry}."""
    return {p["id"]: p for p in json.loads(sh("bpftool", "prog", "show", "-j").stdout)}


class LoadAndAttach(unittest.TestCase):
    loaded = set()   # ids of every program our instances loaded (test_1, test_3)

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
        link = json.loads(sh("ip", "-n", ns.name, "-j", "-d", "link", "show", "dev", ifname).stdout)[0]
        return link.get("xdp")

    def prog_name(self, prog_id):
        """The full name of a program (bpftool takes it from BTF)."""
        return json.loads(sh("bpftool", "prog", "show", "id", str(prog_id), "-j").stdout)["name"]

    def tc_progs(self, ns, ifname, direction):
        """The BPF programs on a clsact hook: {name: (id, direct-action)}."""
        r = sh("tc", "-n", ns.name, "-j", "filter", "show", "dev", ifname, direction, check=False)
        if r.returncode != 0 or not r.stdout.strip():
            return {}
        out = {}
        for f in json.loads(r.stdout):
            opts = f.get("options") or {}
            prog = opts.get("prog") or {}
            if f.get("kind") == "bpf" and prog.get("id"):
                # The kernel keeps 15 characters of a name (BPF_OBJ_NAME_LEN): take bpftool's.
                out[self.prog_name(prog["id"])] = (prog["id"], bool(opts.get("direct-action")))
        return out

    def check_attached(self, ns, ifs):
        """Each interface has our XDP program in driver mode, tc ingress everywhere and tc egress
        on tunnels only, all in direct-action mode; returns the ids of the programs attached."""
        ids = {"xdp": set(), "tc-ingress": set(), "tc-egress": set()}
        for ifname, kind in ifs.items():
            with self.subTest(interface=ifname, kind=kind):
                xdp = self.xdp_of(ns, ifname)
                self.assertIsNotNone(xdp, f"{ifname}: no XDP program attached")
                self.assertEqual(xdp.get("mode"), XDP_ATTACHED_DRV, f"{ifname}: XDP not in driver mode: {xdp}")
                self.assertEqual(self.prog_name(xdp["prog"]["id"]), PROGS["xdp"])
                ids["xdp"].add(xdp["prog"]["id"])
                ingress = self.tc_progs(ns, ifname, "ingress")
                self.assertEqual({n: da for n, (_, da) in ingress.items()}, {PROGS["tc-ingress"]: True},
                                 f"{ifname}: clsact ingress")
                ids["tc-ingress"] |= {i for i, _ in ingress.values()}
                egress = self.tc_progs(ns, ifname, "egress")
                want = {PROGS["tc-egress"]: True} if kind == "tunnel" else {}
                self.assertEqual({n: da for n, (_, da) in egress.items()}, want, f"{ifname}: clsact egress")
                ids["tc-egress"] |= {i for i, _ in egress.values()}
        return ids

    # -- tests (in name order) ------------------------------------------------------------------

    def test_1_every_program_loads_and_attaches_in_both_roles(self):
        lma = self.check_attached(self.lma_ns, LMA_IFS)
        mag = self.check_attached(self.mag_ns, MAG_IFS)
        progs = prog_table()
        for hook in PROGS:
            # One program per hook and instance, shared by its interfaces; the two instances
            # each loaded their own.
            self.assertEqual(len(lma[hook]), 1, f"LMA {hook} programs: {lma[hook]}")
            self.assertEqual(len(mag[hook]), 1, f"MAG {hook} programs: {mag[hook]}")
            self.assertNotEqual(lma[hook], mag[hook], f"{hook}: both instances run the same program")
            for pid in lma[hook] | mag[hook]:
                p = progs[pid]
                print(f"  {p['name']} (id {pid}): {p.get('type')}, {p.get('bytes_xlated')} B xlated, "
                      f"{p.get('bytes_jited')} B jited", file=sys.stderr)
        type(self).loaded = set().union(*lma.values(), *mag.values())
        # The far ends run bpf/xdp_pass.bpf.o.
        for ifname in (*LMA_IFS, *MAG_IFS):
            xdp = self.xdp_of(self.peer, f"p-{ifname}")
            self.assertIsNotNone(xdp, f"p-{ifname}: xdp_pass not attached")
            self.assertEqual(self.prog_name(xdp["prog"]["id"]), "xpmip_xdp_pass")
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
        """A second load of the LMA (pinned maps) swaps the programs under the same XDP links."""
        old = self.check_attached(self.lma_ns, LMA_IFS)
        old_ids = set().union(*old.values())
        links = {l["id"]: l for l in json.loads(sh("bpftool", "link", "show", "-j").stdout)}
        old_links = {lid for lid, l in links.items() if l.get("prog_id") in old["xdp"]}
        self.assertTrue(old_links, "the XDP programs are not attached through bpf links")
        self.lma.dp("load", "--role", "lma", "--sessions", "1024", "--attach", "tun0:tunnel",
                    "--attach", "core0:core:1", "--attach", "corel2:core-l2:1", timeout=dptest.LOAD_TIMEOUT)
        new = self.check_attached(self.lma_ns, LMA_IFS)
        new_ids = set().union(*new.values())
        type(self).loaded |= new_ids
        self.assertFalse(old_ids & new_ids, f"programs not replaced: {old} -> {new}")
        links = {l["id"]: l for l in json.loads(sh("bpftool", "link", "show", "-j").stdout)}
        self.assertEqual({lid for lid, l in links.items() if l.get("prog_id") in new["xdp"]}, old_links,
                         "the restart did not reuse the XDP links")
        # Programs are freed after an RCU grace period, not at once.
        self.assertTrue(wait_for(lambda: not old_ids & set(prog_table()), timeout=10),
                        f"replaced programs still loaded: {old_ids & set(prog_table())}")

    def test_4_unload_leaves_nothing(self):
        for inst, ns, ifs in ((self.lma, self.lma_ns, LMA_IFS), (self.mag, self.mag_ns, MAG_IFS)):
            inst.dp("unload")
            self.assertFalse(os.path.exists(f"/sys/fs/bpf/xpmip/{inst.name}"), f"{inst.name}: pins left")
            for ifname in ifs:
                self.assertIsNone(self.xdp_of(ns, ifname), f"{ifname}: XDP still attached")
                self.assertEqual(self.tc_progs(ns, ifname, "ingress"), {}, f"{ifname}: tc ingress left")
                self.assertEqual(self.tc_progs(ns, ifname, "egress"), {}, f"{ifname}: tc egress left")
        self.assertTrue(wait_for(lambda: not self.loaded & set(prog_table()), timeout=10),
                        f"programs still loaded after unload: {self.loaded & set(prog_table())}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
