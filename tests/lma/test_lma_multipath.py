#!/usr/bin/env python3
"""The LMA's side of RFC 8278 (MAG Multipath Binding), driven by scapy-built PBUs from a
scripted MAG with two proxy CoAs on two links (tun0/wan0 and tun1/wan1), over IPv4/UDP 5436
(RFC 5844) with GRE keys (RFC 5845). Each signaling rule is a test:

- a PBU with options 63 and 64 creates a multipath session; the PBA carries option 63 echoed and
  not option 64 (§4.4 MUST); a second Binding-Id adds a binding with its own GRE key pair, its
  label and its proxy CoA, the same HNP/HoA, and a second path in the data plane session;
- B refreshes the lifetime of every binding, O replaces them all with this one, B with O is
  dropped as malformed (§4.1 MUST NOT) and changes nothing;
- the de-registration of one Binding-Id leaves the others (and the last one ends the session);
- one binding's lifetime expires on its own;
- an MN not authorized for multipath, or a PBU without the MAG Identifier, gets 180 with both
  options echoed;
- `lma.multipath: false` (reloaded with SIGHUP) is a legacy LMA: options skipped, no 63 in the
  PBA, one ordinary binding;
- a link losing carrier takes the paths over it down in the data plane (and brings them back).
"""
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
import dptest  # noqa: E402
import test_lma  # noqa: E402
from dptest import wait_for  # noqa: E402
from test_lma import LMA4, MAG_A4, Pba, opt  # noqa: E402  (not LmaTest: unittest would run its tests here)

MAG_A4_2, LMA4_2 = "192.0.3.10", "192.0.3.1"   # mag-a's second proxy CoA, on the second link
S_ACCEPTED, S_CANNOT_MULTIPATH = 0, 180
RED, BLUE = 1, 2


def o_mmb(bid, label, att=4, b=False, o=False):
    """MAG Multipath-Binding option (63, RFC 8278 §4.1): If-ATT, If-Label, BID, B|O, reserved."""
    return opt(63, bytes([att, label, bid, (0x80 if b else 0) | (0x40 if o else 0), 0, 0]))


def o_magid(nai="mag-a.example"):
    """MAG Identifier option (64, RFC 8278 §4.2): subtype 1 (NAI), reserved, identifier."""
    return opt(64, bytes([1, 0]) + nai.encode())


def mmb_of(pba):
    d = pba.one(63)
    return {"att": d[0], "label": d[1], "bid": d[2], "B": bool(d[3] & 0x80), "O": bool(d[3] & 0x40)}


class MultipathLmaTest(test_lma.LmaTest):
    @classmethod
    def config_text(cls):
        t = super().config_text()
        t = t.replace(f"addresses: [{test_lma.LMA6}, {LMA4}]", f"addresses: [{test_lma.LMA6}, {LMA4}, {LMA4_2}]")
        t = t.replace("  - {name: tun0, kind: tunnel}\n", "  - {name: tun0, kind: tunnel}\n"
                      "  - {name: tun1, kind: tunnel}\n")
        t = t.replace(f"addresses: [{test_lma.MAG_A6}, {MAG_A4}]}}", f"addresses: [{test_lma.MAG_A6}, {MAG_A4}, "
                      f"{MAG_A4_2}]}}")
        t = t.replace("\nmobile_nodes:\n", "\nmobile_nodes:\n  - {id: single@op1.example, realm: 1, multipath: false}\n")
        assert LMA4_2 in t and MAG_A4_2 in t and "tun1" in t and "single@" in t
        return t + ("labels:\n  - {name: red, id: 1, weight: 3}\n  - {name: blue, id: 2}\n"
                    "steering:\n  - {name: web, proto: tcp, remote_ports: 80, labels: [red, blue]}\n")

    @classmethod
    def extra_network(cls, lma, mag):
        cls.world.veth(lma, "tun1", mag, "wan1")
        lma.ip(f"addr add {LMA4_2}/24 dev tun1")
        mag.ip(f"addr add {MAG_A4_2}/24 dev wan1")
        mag.end_host("wan1")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mn_count = 0

    def new_mn(self):
        """A fresh MN-ID for each test (the generic ones of the base configuration)."""
        type(self).mn_count += 1
        return f"mn{type(self).mn_count:02d}@op1.example"

    def mp(self, mn, bid, label, *, b=False, o=False, magid=True, lifetime=400, gre="key", key=None, v4=True,
           hnp="::/0"):
        extra = [o_mmb(bid, label, b=b, o=o)] + ([o_magid()] if magid else [])
        return self.pbu(mn, v4=v4, hnp=hnp, hi=1, gre=gre, key=key if key is not None else 100 * bid + 1,
                        lifetime=lifetime, extra=extra)

    def send_on(self, bu, link, expect=True, timeout=3.0):
        """A PBU over IPv4/UDP 5436 from mag-a's proxy CoA on `link` (1: wan0, 2: wan1)."""
        src, dst = (MAG_A4, LMA4) if link == 1 else (MAG_A4_2, LMA4_2)
        self.ask(op="open_udp", src=src, sport=5436)
        self.ask(op="drain")
        bu.cksum = 0
        self.ask(op="send_udp", src=src, sport=5436, dst=dst, data=bytes(bu).hex())
        if not expect:
            return None
        got = self.ask(op="recv", kinds=["udp"], timeout=timeout)["got"]
        self.assertTrue(got, f"no PBA for a PBU from {src} to {dst}\n{self.log_tail()}")
        self.assertEqual((got[0]["src"], got[0]["to"]), (dst, [src, 5436]), "the PBA goes back the way it came")
        return Pba(bytes.fromhex(got[0]["data"]), got[0]["src"])

    def binding(self, mn):
        r = dptest.sh(test_lma.XPMIP, "show", "bindings", "-i", self.instance, "--json")
        return next((b for b in json.loads(r.stdout) if b["mn"] == mn), None)

    def register_two(self, mn, lifetime=400):
        p1 = self.send_on(self.mp(mn, 1, RED, lifetime=lifetime), 1)
        self.assertStatus(p1, S_ACCEPTED)
        p2 = self.send_on(self.mp(mn, 2, BLUE, lifetime=lifetime, hnp=p1.hnp, v4=p1.hoa[1]), 2)
        self.assertStatus(p2, S_ACCEPTED)
        return p1, p2

    def session_paths(self, hoa):
        s = self.session_of(hoa=hoa)
        self.assertIsNotNone(s, f"no data plane session for {hoa}")
        return s["paths"]

    # --- §4.1 / §4.4: registration ------------------------------------------------------------

    def test_4_4_first_binding_pba_echoes_63_without_64(self):
        mn = self.new_mn()
        pba = self.send_on(self.mp(mn, 1, RED), 1)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(mmb_of(pba), {"att": 4, "label": RED, "bid": 1, "B": False, "O": False})
        self.assertFalse(pba.has(64), "§4.4: the PBA carries option 63 without the MAG Identifier option")
        b = self.binding(mn)
        self.assertTrue(b["multipath"])
        self.assertEqual(b["mag_id"], "mag-a.example")
        self.assertEqual([(p["bid"], p["label"], p["mag"]) for p in b["paths"]], [(1, RED, MAG_A4)])

    def test_second_bid_adds_a_binding_with_its_own_keys_same_addresses_two_paths(self):
        mn = self.new_mn()
        p1, p2 = self.register_two(mn)
        self.assertEqual((p2.hnp, p2.hoa), (p1.hnp, p1.hoa), "one mobility session: the same HNP and HoA")
        self.assertEqual(mmb_of(p2)["bid"], 2)
        k1, k2 = p1.gre_key[1], p2.gre_key[1]
        self.assertTrue(k1 and k2 and k1 != k2, f"RFC 5845 keys per binding: {k1} {k2}")
        b = self.binding(mn)
        self.assertEqual([(p["bid"], p["label"], p["mag"], p["lma"], p["key_uplink"], p["key_downlink"])
                          for p in b["paths"]],
                         [(1, RED, MAG_A4, LMA4, k1, 101), (2, BLUE, MAG_A4_2, LMA4_2, k2, 201)])
        paths = self.session_paths(p1.hoa[1])
        self.assertEqual([(p["bid"], p["label"], p["remote"], p["key_uplink"], p["key_downlink"], p["up"])
                          for p in paths],
                         [(1, RED, MAG_A4, k1, 101, True), (2, BLUE, MAG_A4_2, k2, 201, True)])
        self.assertEqual([p["weight"] for p in paths], [3, 1], "per-packet weights from the labels")
        self.assertEqual(self.session_of(hoa=p1.hoa[1])["policy"], 1, "the steering policy applies")

    def test_reregistration_of_a_bid_keeps_its_uplink_key(self):
        mn = self.new_mn()
        p1, p2 = self.register_two(mn)
        again = self.send_on(self.mp(mn, 2, BLUE, hnp=p1.hnp, v4=p1.hoa[1]), 2)
        self.assertStatus(again, S_ACCEPTED)
        self.assertEqual(again.gre_key[1], p2.gre_key[1], "RFC 5845 §3.3: same key for the binding's life")
        self.assertEqual(len(self.binding(mn)["paths"]), 2)

    def test_4_1_b_flag_refreshes_every_binding(self):
        mn = self.new_mn()
        p1, _ = self.register_two(mn, lifetime=400)
        # Without B: only the binding itself.
        self.send_on(self.mp(mn, 1, RED, lifetime=40, hnp=p1.hnp, v4=p1.hoa[1]), 1)
        rem = {p["bid"]: p["remaining"] for p in self.binding(mn)["paths"]}
        self.assertLessEqual(rem[1], 40)
        self.assertGreater(rem[2], 300, "without B the other binding keeps its lifetime")
        # With B: all of them.
        pba = self.send_on(self.mp(mn, 1, RED, b=True, lifetime=60, hnp=p1.hnp, v4=p1.hoa[1]), 1)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertTrue(mmb_of(pba)["B"])
        rem = {p["bid"]: p["remaining"] for p in self.binding(mn)["paths"]}
        self.assertTrue(50 <= rem[1] <= 60 and 50 <= rem[2] <= 60, f"B: every binding's lifetime 60 s: {rem}")

    def test_4_1_o_flag_replaces_every_binding_with_this_one(self):
        mn = self.new_mn()
        p1, p2 = self.register_two(mn)
        pba = self.send_on(self.mp(mn, 2, BLUE, o=True, hnp=p1.hnp, v4=p1.hoa[1]), 2)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(pba.gre_key[1], p2.gre_key[1])
        self.assertEqual([p["bid"] for p in self.binding(mn)["paths"]], [2])
        self.assertEqual([p["bid"] for p in self.session_paths(p1.hoa[1])], [2])

    def test_4_1_b_and_o_together_are_rejected_and_change_nothing(self):
        mn = self.new_mn()
        p1, _ = self.register_two(mn)
        before = self.binding(mn)["paths"]
        bu = self.mp(mn, 1, RED, hnp=p1.hnp, v4=p1.hoa[1])
        bu.options[-2] = opt(63, bytes([4, RED, 1, 0xC0, 0, 0]))   # B and O
        self.assertIsNone(self.send_on(bu, 1, expect=False))
        got = self.ask(op="recv", kinds=["udp"], timeout=1.5)["got"]
        self.assertEqual(got, [], "no PBA: a PBU with B and O is malformed (RFC 8278 §4.1 MUST NOT)")
        self.assertTrue(wait_for(lambda: "B and O are both set" in self.log_text(), timeout=3), self.log_tail())
        after = self.binding(mn)["paths"]
        self.assertEqual([(p["bid"], p["key_uplink"]) for p in after], [(p["bid"], p["key_uplink"]) for p in before])

    # --- de-registration and expiry -----------------------------------------------------------

    def test_deregistration_of_one_bid_leaves_the_others(self):
        mn = self.new_mn()
        p1, p2 = self.register_two(mn)
        pba = self.send_on(self.mp(mn, 1, RED, lifetime=0, hnp=p1.hnp, v4=p1.hoa[1], gre=None), 1)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(mmb_of(pba)["bid"], 1)
        b = self.binding(mn)
        self.assertEqual((b["state"], [p["bid"] for p in b["paths"]]), ("registered", [2]))
        self.assertEqual([p["bid"] for p in self.session_paths(p1.hoa[1])], [2], "the data plane keeps BLUE only")
        # The last one ends the session (held MinDelayBeforeBCEDelete, RFC 5213 §5.3.5).
        pba = self.send_on(self.mp(mn, 2, BLUE, lifetime=0, hnp=p1.hnp, v4=p1.hoa[1], gre=None), 2)
        self.assertStatus(pba, S_ACCEPTED)
        self.assertEqual(self.binding(mn)["state"], "deregistered")
        self.assertIsNone(self.session_of(hoa=p1.hoa[1]))

    def test_one_bindings_lifetime_expires_on_its_own(self):
        mn = self.new_mn()
        p1 = self.send_on(self.mp(mn, 1, RED, lifetime=400), 1)
        self.send_on(self.mp(mn, 2, BLUE, lifetime=4, hnp=p1.hnp, v4=p1.hoa[1]), 2)
        self.assertEqual(len(self.binding(mn)["paths"]), 2)
        self.assertTrue(wait_for(lambda: [p["bid"] for p in self.binding(mn)["paths"]] == [1], timeout=8),
                        self.binding(mn))
        self.assertEqual([p["bid"] for p in self.session_paths(p1.hoa[1])], [1])
        self.assertEqual(self.binding(mn)["state"], "registered")

    def test_the_session_ends_when_its_last_binding_expires(self):
        # The long binding is de-registered first: the session's lifetime is the short one's now.
        mn = self.new_mn()
        p1 = self.send_on(self.mp(mn, 1, RED, lifetime=400), 1)
        self.send_on(self.mp(mn, 2, BLUE, lifetime=4, hnp=p1.hnp, v4=p1.hoa[1]), 2)
        self.send_on(self.mp(mn, 1, RED, lifetime=0, hnp=p1.hnp, v4=p1.hoa[1], gre=None), 1)
        self.assertEqual([p["bid"] for p in self.session_paths(p1.hoa[1])], [2])
        self.assertTrue(wait_for(lambda: self.binding(mn) is None, timeout=7), self.binding(mn))
        self.assertIsNone(self.session_of(hoa=p1.hoa[1]), "no binding left: no session")

    # --- 180 and legacy -----------------------------------------------------------------------

    def test_4_4_180_for_an_mn_not_authorized_echoes_63_and_64(self):
        pba = self.send_on(self.mp("single@op1.example", 1, RED), 1)
        self.assertStatus(pba, S_CANNOT_MULTIPATH)
        self.assertEqual(mmb_of(pba)["bid"], 1)
        d = pba.one(64)
        self.assertEqual((d[0], d[2:].decode()), (1, "mag-a.example"))
        self.assertIsNone(self.binding("single@op1.example"))
        # Without the options it registers as an ordinary single-path binding.
        plain = self.send_on(self.pbu("single@op1.example", v4=True, gre="key", key=9), 1)
        self.assertStatus(plain, S_ACCEPTED)
        self.assertFalse(plain.has(63))
        self.assertFalse(self.binding("single@op1.example")["multipath"])

    def test_4_4_180_without_the_mag_identifier(self):
        mn = self.new_mn()
        pba = self.send_on(self.mp(mn, 1, RED, magid=False), 1)
        self.assertStatus(pba, S_CANNOT_MULTIPATH)
        self.assertTrue(pba.has(63))
        self.assertIsNone(self.binding(mn))

    def test_4_4_legacy_lma_skips_the_options(self):
        mn = self.new_mn()
        path = self.cfg_file.name
        with open(path) as f:
            original = f.read()
        try:
            with open(path, "w") as f:
                f.write(original.replace("  gre: allowed\n", "  gre: allowed\n  multipath: false\n", 1))
            self.lma_proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: self.log_text().count("configuration reloaded") >= 1, timeout=5))
            pba = self.send_on(self.mp(mn, 1, RED), 1)
            self.assertStatus(pba, S_ACCEPTED)
            self.assertFalse(pba.has(63) or pba.has(64), "a legacy LMA answers without options 63 and 64")
            b = self.binding(mn)
            self.assertFalse(b["multipath"])
            self.assertNotIn("paths", b)
        finally:
            with open(path, "w") as f:
                f.write(original)
            n = self.log_text().count("configuration reloaded")
            self.lma_proc.send_signal(signal.SIGHUP)
            wait_for(lambda: self.log_text().count("configuration reloaded") > n, timeout=5)

    # --- failover -----------------------------------------------------------------------------

    def test_carrier_loss_takes_the_paths_over_the_link_down_and_back(self):
        mn = self.new_mn()
        p1, _ = self.register_two(mn)
        hoa = p1.hoa[1]
        try:
            self.mag_ns.ip("link set wan1 down")   # tun1 loses its carrier
            t0 = time.time()
            self.assertTrue(wait_for(lambda: [p["up"] for p in self.session_paths(hoa)] == [True, False], timeout=2),
                            self.session_paths(hoa))
            self.assertLess(time.time() - t0, 1.0, "the path goes down within a second")
            self.assertEqual([p["up"] for p in self.binding(mn)["paths"]], [True, False])
            self.assertEqual(len(self.binding(mn)["paths"]), 2, "the binding stays: no re-registration needed")
        finally:
            self.mag_ns.ip("link set wan1 up")
        self.assertTrue(wait_for(lambda: [p["up"] for p in self.session_paths(hoa)] == [True, True], timeout=2))


# Only the multipath tests here: the base class's run in lma.registration.
for _name in dir(test_lma.LmaTest):
    if _name.startswith("test_"):
        setattr(MultipathLmaTest, _name, None)


if __name__ == "__main__":
    test_lma.XPMIP = os.environ["XPMIP_BIN"]
    dptest.TOOL = os.environ["XPMIP_DP"]
    unittest.main(verbosity=2)
