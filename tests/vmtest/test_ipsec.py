#!/usr/bin/env python3
"""PBU/PBA signaling between our MAG and our LMA protected by IPsec (RFC 5213 §4), with the
Linux kernel's XFRM: transport-mode ESP security associations with static keys and policies that
select only the signaling, IPv6 Mobility Header (protocol 135) and IPv4 UDP 5436 (RFC 5844), in
both namespaces (README "Signaling over IPsec"). Needs the esp4/esp6 modules: it runs in the VM
suite (tests/vmtest/suite, Debian's 6.1), which the build host's kernel may not have.

  [mn] eth0 ---- acc0 [MAG] wan0 ==ESP(signaling), GRE(data)== tun0 [LMA] core1 ---- [cn]

The namespaces, the agents' configurations and the scripted peers are those of the MAG tests
(tests/mag/test_mag.py, WithOurLma); the PBU options and the PBA parser those of the LMA tests."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dataplane"))
sys.path.insert(0, os.path.join(HERE, "..", "mag"))
sys.path.insert(0, os.path.join(HERE, "..", "lma"))
import dptest  # noqa: E402
from dptest import wait_for  # noqa: E402
import test_lma  # noqa: E402
import test_mag  # noqa: E402
from test_lma import Pba, o_att, o_gre, o_hi, o_hnp, o_mnid, o_ts, o_v4req  # noqa: E402
from test_mag import LMA4, LMA6, MAG4, MAG6, MagWorld, mac_of, mn_id, our_lma_config  # noqa: E402

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, MIP6MH_BU  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

# ESP and what rfc4106(gcm(aes)) is made of, seqiv's random numbers (drbg) included. A normal system
# loads them on demand; the VM's kernel cannot (its module loader runs outside the guest's chroot).
MODULES = ("esp4", "esp6", "xfrm_user", "seqiv", "gcm", "ghash_generic", "ctr", "drbg")
AEAD = "rfc4106(gcm(aes))"
# One SA per direction and family: (name, src, dst, spi, reqid, key: 16 octets of AES key + 4 of salt).
SAS = (("mag6->lma6", MAG6, LMA6, 0x5213_0601, 61, "0x" + "11" * 16 + "a1a1a1a1"),
       ("lma6->mag6", LMA6, MAG6, 0x5213_0602, 62, "0x" + "22" * 16 + "a2a2a2a2"),
       ("mag4->lma4", MAG4, LMA4, 0x5844_0401, 41, "0x" + "33" * 16 + "a3a3a3a3"),
       ("lma4->mag4", LMA4, MAG4, 0x5844_0402, 42, "0x" + "44" * 16 + "a4a4a4a4"))
SA = {s[0]: s for s in SAS}
SCRIPT_SPORT = 5437   # the scripted IPv4 MAG's source port (the MAG agent may hold 5436)
CN = "198.51.100.2"


def xfrm_policies(role):
    """The policies of one end (README "Signaling over IPsec"): its signaling with the peer, and
    only that, goes through ESP both ways, and the peer's signaling is accepted only through ESP
    (the `dir in` policies: the kernel drops cleartext signaling before the agent reads it)."""
    t = "proto esp mode transport reqid"
    if role == "mag":
        return [f"src {MAG6}/128 dst {LMA6}/128 proto 135 dir out tmpl src {MAG6} dst {LMA6} {t} 61",
                f"src {LMA6}/128 dst {MAG6}/128 proto 135 dir in tmpl src {LMA6} dst {MAG6} {t} 62",
                f"src {MAG4}/32 dst {LMA4}/32 proto udp dport 5436 dir out tmpl src {MAG4} dst {LMA4} {t} 41",
                f"src {LMA4}/32 dst {MAG4}/32 proto udp sport 5436 dir in tmpl src {LMA4} dst {MAG4} {t} 42"]
    return [f"src {LMA6}/128 dst {MAG6}/128 proto 135 dir out tmpl src {LMA6} dst {MAG6} {t} 62",
            f"src {MAG6}/128 dst {LMA6}/128 proto 135 dir in tmpl src {MAG6} dst {LMA6} {t} 61",
            f"src {LMA4}/32 dst {MAG4}/32 proto udp sport 5436 dir out tmpl src {LMA4} dst {MAG4} {t} 42",
            f"src {MAG4}/32 dst {LMA4}/32 proto udp dport 5436 dir in tmpl src {MAG4} dst {LMA4} {t} 41"]


def sa_counters(ns):
    """`ip -s xfrm state` of a namespace: {spi: (bytes, packets, failed)}."""
    out = ns.run("ip", "-s", "xfrm", "state").stdout
    got = {}
    for block in re.split(r"(?m)^(?=src )", out):
        spi = re.search(r"proto esp spi (0x[0-9a-f]+)", block)
        cur = re.search(r"lifetime current:\s*\n\s*(\d+)\(bytes\), (\d+)\(packets\)", block)
        failed = re.search(r"replay \d+ failed (\d+)", block)
        if spi and cur:
            got[int(spi.group(1), 16)] = (int(cur.group(1)), int(cur.group(2)),
                                          int(failed.group(1)) if failed else 0)
    return got


def xfrm_stat(ns):
    out = ns.run("cat", "/proc/net/xfrm_stat").stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines() if line.strip())}


def bindings(instance):
    r = dptest.sh(test_mag.XPMIP, "show", "bindings", "-i", instance, "--json")
    return {b["mn"]: b for b in json.loads(r.stdout)}


def pbu(mn, seq, *, v4):
    """A new attachment's PBU as scapy builds it (GRE key required by our LMA's configuration)."""
    options = [o_mnid(mn), o_v4req() if v4 else o_hnp(), o_hi(1), o_att(4), o_ts(test_lma.now_ts()),
               o_gre(0x4000 + seq)]
    return MIP6MH_BU(seq=seq, flags="AHP", mhtime=400 // 4, options=options)


class SignalingOverIpsec(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        r = subprocess.run(["modprobe", "-a", *MODULES], capture_output=True, text=True)
        if r.returncode != 0:
            if os.environ.get("VMTEST"):
                raise RuntimeError(f"the VM's kernel cannot load {MODULES}: {r.stderr.strip()}")
            raise unittest.SkipTest(f"this kernel lacks one of {MODULES} (the VM suite runs this test)")

    def test_signaling_goes_through_esp_and_cleartext_signaling_is_refused(self):
        m = MagWorld("ips", with_lma=True)
        state = tempfile.mkdtemp(prefix="xpmip-ipsec-state-")
        lma_inst = f"{m.w.prefix}-lma"
        try:
            # ---- XFRM in both namespaces, before either agent sends anything -------------------
            for role, ns in (("mag", m.mag_ns), ("lma", m.lma_ns)):
                ns.run("ip", "-batch", "-", input="".join(
                    [f"xfrm state add src {src} dst {dst} proto esp spi {spi:#x} reqid {reqid} mode transport "
                     f"replay-window 32 aead {AEAD} {key} 128\n" for _, src, dst, spi, reqid, key in SAS] +
                    [f"xfrm policy add {p}\n" for p in xfrm_policies(role)]))

            # ---- the agents: the MAG registers MN 1 over IPv6 (Mobility Header, proto 135) -----
            # (Heartbeats, MH and UDP 5436 too, would go through the same SAs at times of their own:
            # off at both agents, as start_mag() has them, so that every count below is exact.)
            lma_cfg = our_lma_config(m, state, journal=False) + "".join(
                f"  - {{id: {mn_id(i)}, realm: 1}}\n" for i in (2, 3, 4)) + "timers:\n  heartbeat_interval: 0\n"
            m.mn_ns.ip(f"link set eth0 address {mac_of(1)}")
            # Both agents start at once (each takes 10 to 25 s in the VM, verifying its programs);
            # the MAG retransmits until the LMA answers.
            lma = {}

            def start_lma():
                try:
                    lma["proc"], lma["log"] = m.start_proc(m.lma_ns, "lma", lma_cfg, "up:")
                except BaseException as e:   # (raised again below)
                    lma["error"] = e
            t = threading.Thread(target=start_lma)
            t.start()
            try:
                m.start_mag(static=(1,))
            finally:
                t.join()
            if "error" in lma:
                raise lma["error"]
            m.lma_proc, lma_log = lma["proc"], lma["log"]
            logs = lambda: m.mag_log()[-3000:] + "\n--- LMA\n" + lma_log()[-3000:]   # noqa: E731
            self.assertTrue(wait_for(lambda: bindings(lma_inst).get(mn_id(1), {}).get("state") == "registered" and
                                     bindings(m.mag_instance).get(mn_id(1), {}).get("state") == "registered",
                                     timeout=60), logs())
            self.assertIn(f"PBU mn={mn_id(1)} mag={MAG6}", lma_log())

            # The ESP SAs counted the PBU and the PBA: each SA as many packets at its receiver as at
            # its sender, none failed (authentication, replay).
            spi6_up, spi6_down = SA["mag6->lma6"][3], SA["lma6->mag6"][3]

            def same_both_ends():
                a, b = sa_counters(m.mag_ns), sa_counters(m.lma_ns)
                return all(s in a and a[s][:2] == b.get(s, (None,))[:2] for s in (spi6_up, spi6_down))
            self.assertTrue(wait_for(same_both_ends, timeout=5), f"{sa_counters(m.mag_ns)} {sa_counters(m.lma_ns)}")
            mag_sa, lma_sa = sa_counters(m.mag_ns), sa_counters(m.lma_ns)
            self.assertGreaterEqual(mag_sa[spi6_up][1], 1, f"the PBU went out through ESP: {mag_sa}")
            self.assertGreaterEqual(lma_sa[spi6_down][1], 1, f"the PBA went out through ESP: {lma_sa}")
            for sa in (mag_sa, lma_sa):
                self.assertEqual([sa[s][2] for s in sa], [0] * len(sa), f"failed (ICV, replay): {sa}")
            print(f"  IPv6 signaling SAs: MAG->LMA {mag_sa[spi6_up][1]} packets {mag_sa[spi6_up][0]} octets, "
                  f"LMA->MAG {lma_sa[spi6_down][1]} packets {lma_sa[spi6_down][0]} octets", flush=True)

            # ---- data traffic (GRE) stays outside the policies: no ESP for it ------------------
            s = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]
            self.assertEqual((s["encap"], s["gre_keys"]), ("gre", True))
            m.mn_ns.ip(f"addr add {s['hoa'].split('/')[0]}/16 dev eth0")
            m.mn_ns.ip("route add default via 10.0.0.1")
            r = m.mn_ns.run("ping", "-c", "3", "-i", "0.2", "-W", "3", CN, check=False, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + logs())
            s = [x for x in m.sessions() if x.get("mn_mac") == mac_of(1)][0]
            self.assertGreaterEqual(s["counters"]["uplink"]["packets"], 3)
            self.assertGreaterEqual(s["counters"]["downlink"]["packets"], 3)
            self.assertEqual((sa_counters(m.mag_ns), sa_counters(m.lma_ns)), (mag_sa, lma_sa),
                             "GRE went through ESP")

            # ---- IPv4 signaling (UDP 5436, RFC 5844) from the MAG's namespace: ESP both ways -----
            peer = m.mag_ns.popen("/usr/bin/python3", test_mag.PEER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
            m.ask(peer, op="open_udp", src=MAG4, sport=SCRIPT_SPORT)
            bu = pbu(mn_id(2), 100, v4=True)
            bu.cksum = 0   # RFC 5844 §3: MH checksum 0 over UDP
            m.ask(peer, op="send_udp", src=MAG4, sport=SCRIPT_SPORT, dst=LMA4, data=bytes(bu).hex())
            got = m.ask(peer, op="recv", kinds=["udp"], timeout=10)["got"]
            self.assertTrue(got, "no PBA over UDP\n" + lma_log()[-2000:])
            self.assertEqual((got[0]["src"], got[0]["sport"], got[0]["to"]), (LMA4, 5436, [MAG4, SCRIPT_SPORT]))
            self.assertEqual(Pba(bytes.fromhex(got[0]["data"]), LMA4).status, test_lma.S_ACCEPTED)
            self.assertEqual(bindings(lma_inst)[mn_id(2)]["state"], "registered")
            spi4_up, spi4_down = SA["mag4->lma4"][3], SA["lma4->mag4"][3]
            mag_sa, lma_sa = sa_counters(m.mag_ns), sa_counters(m.lma_ns)
            self.assertEqual([mag_sa[spi4_up][1], lma_sa[spi4_up][1], lma_sa[spi4_down][1], mag_sa[spi4_down][1]],
                             [1, 1, 1, 1], f"one PBU and one PBA, each through ESP: {mag_sa} {lma_sa}")
            print(f"  IPv4 signaling SAs: MAG->LMA {mag_sa[spi4_up][1]} packet, LMA->MAG {lma_sa[spi4_down][1]} packet",
                  flush=True)

            # ---- cleartext PBUs from the MAG's addresses, on the signaling interface: refused ----
            # (Ethernet frames out of the MAG's wan0, which bypass its XFRM output: what an attacker on
            # the link, or a MAG without IPsec, would send.)
            stat_before, sa_before = xfrm_stat(m.lma_ns), sa_counters(m.lma_ns)
            mag_mac, lma_mac = m.mag_ns.mac("wan0"), m.lma_ns.mac("tun0")
            clear6 = Ether(src=mag_mac, dst=lma_mac) / IPv6(src=MAG6, dst=LMA6, hlim=64) / pbu(mn_id(3), 200, v4=False)
            bu4 = pbu(mn_id(4), 201, v4=True)
            bu4.cksum = 0
            clear4 = Ether(src=mag_mac, dst=lma_mac) / IP(src=MAG4, dst=LMA4) / \
                UDP(sport=SCRIPT_SPORT, dport=5436) / bu4
            for frame in (clear6, clear4):
                m.ask(peer, op="frame", ifname="wan0", data=bytes(frame).hex())
            refused = lambda: (xfrm_stat(m.lma_ns)["XfrmInTmplMismatch"] -   # noqa: E731
                               stat_before["XfrmInTmplMismatch"])
            wait_for(lambda: refused() >= 2 or {mn_id(3), mn_id(4)} & bindings(lma_inst).keys(), timeout=10)
            self.assertEqual(m.ask(peer, op="recv", kinds=["udp"], timeout=1.5)["got"], [], "no PBA for cleartext")
            b = bindings(lma_inst)
            self.assertNotIn(mn_id(3), b, "a cleartext PBU over IPv6 registered its MN")
            self.assertNotIn(mn_id(4), b, "a cleartext PBU over UDP registered its MN")
            self.assertNotIn(f"mn={mn_id(3)}", lma_log(), "the kernel dropped it before the agent read it")
            self.assertNotIn(f"mn={mn_id(4)}", lma_log(), "the kernel dropped it before the agent read it")
            self.assertGreaterEqual(refused(), 2, "XFRM refused both (no ESP where the policy wants it): "
                                    f"{xfrm_stat(m.lma_ns)}")
            self.assertEqual(sa_counters(m.lma_ns), sa_before, "cleartext did not pass through an SA")
            self.assertEqual(b[mn_id(1)]["state"], "registered")
            stat_after = xfrm_stat(m.lma_ns)
            print("  cleartext PBUs refused by the LMA's kernel: XfrmInTmplMismatch "
                  f"{stat_before['XfrmInTmplMismatch']} -> {stat_after['XfrmInTmplMismatch']}", flush=True)
        finally:
            m.close()
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    test_mag.XPMIP = test_lma.XPMIP = os.environ["XPMIP_BIN"]
    dptest.TOOL = os.environ["XPMIP_DP"]
    unittest.main(verbosity=2)
