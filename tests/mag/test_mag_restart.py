#!/usr/bin/env python3
"""A MAG restart loses no binding (issue 17): our MAG and our LMA (journals on) in the namespaces
of test_mag.py, with 240 dynamic MNs attached in a shuffled order through the control socket:

- three times, the MAG is killed with SIGKILL at a random point of the attach storm (PBUs and
  PBAs in flight) and started again with the same configuration and no attach command: every MN
  attached before the kill is back in its Binding Update List and registers again at once; every
  MN the LMA held before the kill is registered at the MAG with the same prefix, address and
  uplink and downlink GRE keys the LMA had, and the LMA still holds it with those; the MAG's data
  plane holds exactly its MNs' sessions (no orphans);
- a sequence-numbered uplink flow of one MN through the MAG's data plane, running across a
  kill -9 and the restart, loses no packet (counted by sequence number at the correspondent);
- with 20 % of the signaling lost each way (nftables, both namespaces), a SIGTERM leaves no
  binding registered at the LMA: de-registrations are resent until answered;
- after that SIGTERM, the MNs attached again within MinDelayBeforeBCEDelete get their uplink keys
  back (RFC 5213 §5.3.5, RFC 5845 §3.3);
- a MAG that restarts without its journal (its state lost) is seen by the LMA's heartbeats (its
  Restart Counter changed, RFC 5847 §6.2), and the bindings it does not register again are let go
  after mag_restart_grace instead of their lifetime;
- a MAG restarted with its journal whose heartbeat answers are lost until the LMA has marked it
  down (after its new life's PBUs) has none of the bindings it registered again let go;
- a journal cut short or corrupted at its tail: what is intact comes back, the log says what was
  lost, the agent runs.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lma"))
import dptest  # noqa: E402
from dptest import wait_for  # noqa: E402
from test_mag import LMA6, MAG4, MAG6, XPMIP, MagWorld, our_lma_config  # noqa: E402
from test_lma_restart import RECEIVER, FLOW_PORT  # noqa: E402

STORM = 240
ROUNDS = 3
CN4 = "198.51.100.2"
LMA_RESTART_GRACE = 2


def mn(i):
    return f"m{i:03d}@op1.example"


def mac(i):
    return f"02:00:00:00:{(i >> 8) & 0xff:02x}:{i & 0xff:02x}"


# Sends `count` IPv4/UDP frames from the MN (its MAC and home address) to the correspondent at
# `pps`, payload = sequence number, out of the MN's eth0 to the MAG's access link.
SENDER = """
import socket, struct, sys, time
src_mac, dst_mac, hoa, cn, port, count, pps = sys.argv[1:8]
port, count, pps = int(port), int(count), float(pps)
def csum(b):
    if len(b) % 2:
        b += b"\\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + b"\\x08\\x00"
t0 = time.monotonic()
for i in range(count):
    payload = struct.pack("!I", i) + bytes(28)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0x4000, 64, 17, 0,
                     socket.inet_aton(hoa), socket.inet_aton(cn))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    s.send(eth + ip + udp)
    delay = t0 + (i + 1) / pps - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(f"sent {count}", flush=True)
"""


class MagRestartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = MagWorld("mr", with_lma=True)
        cls.lma_state = tempfile.mkdtemp(prefix="xpmip-mr-lma-")
        try:
            cls.lma_cfg = our_lma_config(
                cls.m, cls.lma_state, journal=True, ipv6_pool="2001:db8:a00::/40",
                subscribers="mobile_node_domains:\n  - {domain: op1.example, realm: 1}\n",
                timers=f"""timers:
  min_delay_before_bce_delete: 60
  heartbeat_interval: 0.5       # RFC 5847 from the LMA: it sees the MAG's restarts
  missing_heartbeats_allowed: 8   # (down after 4 s: a restarted MAG registers again first)
  mag_restart_grace: {LMA_RESTART_GRACE}
""")
            cls.m.lma_proc, log = cls.m.start_proc(cls.m.lma_ns, "lma", cls.lma_cfg, "up:")
            cls.lma_log = staticmethod(log)
        except BaseException:
            cls.m.close()
            shutil.rmtree(cls.lma_state, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        mag_killed = cls.m.mag_proc is not None and cls.m.mag_proc.poll() is not None
        cls.m.close()
        if mag_killed:
            subprocess.run([dptest.TOOL, "-i", cls.m.mag_instance, "unload"], capture_output=True)
        shutil.rmtree(cls.lma_state, ignore_errors=True)

    def setUp(self):
        self.m.mag_instance = f"{self.m.w.prefix}-mag"

    def tearDown(self):
        """The MAG stopped (its MNs de-registered) and its journal gone: each test starts empty."""
        p = self.m.mag_proc
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p is not None and p.returncode != 0:
            subprocess.run([dptest.TOOL, "-i", self.m.mag_instance, "unload"], capture_output=True)
        self.m.mag_proc = None
        for f in os.listdir(self.m.mag_state):
            os.unlink(os.path.join(self.m.mag_state, f))

    # ---- helpers -------------------------------------------------------------------------------

    def mag_cfg(self, shutdown_timeout=10):
        mns = "\n".join(f"  - {{id: {mn(i)}, mac: '{mac(i)}', interface: acc0, attach: dynamic}}" for i in range(STORM))
        return f"""instance: {self.m.mag_instance}
state_directory: {self.m.mag_state}
log_level: debug
mag:
  addresses: [{MAG6}, {MAG4}]
  lma: {LMA6}
  gre: keys
interfaces:
  - {{name: wan0, kind: tunnel}}
  - {{name: acc0, kind: access}}
timers:
  lifetime: 3600
  heartbeat_interval: 0
  initial_retransmit: 0.5
  shutdown_timeout: {shutdown_timeout}
limits:
  sessions: 1024
mobile_nodes:
{mns}
"""

    def start_mag(self, **kw):
        self.m.mag_proc, self.m.mag_log = self.m.start_proc(self.m.mag_ns, "mag", self.mag_cfg(**kw), "up:")

    def kill_mag(self):
        self.m.mag_proc.kill()
        self.m.mag_proc.wait()

    def show(self, instance, what):
        r = subprocess.run([XPMIP, "show", what, "-i", instance, "--json"], capture_output=True, text=True, check=True)
        return json.loads(r.stdout)

    def lma_bindings(self):
        return {b["mn"]: b for b in self.show(f"{self.m.w.prefix}-lma", "bindings")}

    def mag_bindings(self):
        return {b["mn"]: b for b in self.show(self.m.mag_instance, "bindings")}

    def mag_sessions(self):
        return self.m.sessions()

    def attach(self, i):
        subprocess.run([XPMIP, "attach", "-i", self.m.mag_instance, mn(i)], capture_output=True, text=True, check=True)

    def registered_at_lma(self):
        return {k: v for k, v in self.lma_bindings().items() if v["state"] == "registered"}

    def assert_same_binding(self, lma_before, mag_after, lma_after, who):
        for key in ("hnp", "hoa", "key_uplink", "key_downlink"):
            self.assertEqual(lma_after[key], lma_before[key], f"{who}: {key} at the LMA")
        self.assertEqual((mag_after["hnp"], mag_after["hoa"], mag_after["key_uplink"], mag_after["key_downlink"]),
                         (lma_before["hnp"], lma_before["hoa"], lma_before["key_uplink"], lma_before["key_downlink"]),
                         f"{who}: the MAG's binding is the one the LMA held before the kill")

    def all_registered(self, ids):
        b = self.mag_bindings()
        return all(b.get(i, {}).get("state") == "registered" for i in ids)

    def assert_sessions_match_bindings(self):
        b = self.mag_bindings()
        want = sorted(x["session"] for x in b.values() if x["state"] == "registered")
        have = sorted(s["id"] for s in self.mag_sessions())
        self.assertEqual(have, want, "the data plane holds exactly the registered MNs' sessions")

    # ---- tests -------------------------------------------------------------------------------

    def test_1_kill_mid_storm_loses_no_binding(self):
        order = list(range(STORM))
        random.shuffle(order)
        per_round = STORM // ROUNDS
        attached = []
        self.start_mag()
        for r in range(ROUNDS):
            batch = order[r * per_round:(r + 1) * per_round]
            cut = random.randint(per_round // 3, per_round - 1)
            for i in batch[:cut]:
                self.attach(i)
                attached.append(mn(i))
            self.kill_mag()   # PBUs and PBAs of the last attaches in flight
            time.sleep(0.3)
            lma_before = self.registered_at_lma()
            self.start_mag()   # no attach command: what comes back comes from the journal
            self.assertTrue(wait_for(lambda: self.all_registered(attached), timeout=60),
                            f"round {r}: not all of {len(attached)} back and registered: "
                            f"{[k for k in attached if self.mag_bindings().get(k, {}).get('state') != 'registered']}"
                            f"\n{self.m.mag_log()[-3000:]}")
            mag_after, lma_after = self.mag_bindings(), self.registered_at_lma()
            self.assertGreater(len(lma_before), 0)
            for who, b in lma_before.items():
                self.assertIn(who, mag_after, f"round {r}: {who} was at the LMA before the kill")
                self.assert_same_binding(b, mag_after[who], lma_after[who], f"round {r}: {who}")
            self.assert_sessions_match_bindings()
            for i in batch[cut:]:   # the rest of the round's MNs, before the next kill
                self.attach(i)
                attached.append(mn(i))
            self.assertTrue(wait_for(lambda: self.all_registered(attached), timeout=60), self.m.mag_log()[-3000:])
        restored = [x for x in self.m.mag_log().splitlines() if "mobile node(s) restored" in x]
        self.assertEqual(len(restored), 1, restored)   # (the log of the last start)
        self.assertNotIn(" 0 mobile node(s) restored", restored[0])

    def test_2_a_flow_through_the_mag_loses_nothing_across_kill_and_restart(self):
        self.start_mag()
        self.attach(0)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(0)]), timeout=30), self.m.mag_log()[-3000:])
        hoa = self.mag_bindings()[mn(0)]["hoa"]
        self.m.cn_ns.ip(f"route replace {hoa.split('/')[0]}/32 via 198.51.100.1")
        rx = self.m.cn_ns.popen("/usr/bin/python3", "-c", RECEIVER, stdout=subprocess.PIPE, text=True)
        self.assertEqual(rx.stdout.readline().strip(), "ready")
        count, pps = 1500, 300.0
        tx = self.m.mn_ns.popen("/usr/bin/python3", "-c", SENDER, mac(0), self.m.mag_ns.mac("acc0"),
                                hoa.split("/")[0], CN4, str(FLOW_PORT), str(count), str(pps), stdout=subprocess.PIPE,
                                text=True)
        time.sleep(1.0)
        self.kill_mag()
        time.sleep(0.5)
        self.start_mag()
        self.assertEqual(tx.stdout.readline().strip(), f"sent {count}")
        tx.wait(timeout=30)
        got = int(rx.stdout.readline().strip() or 0)
        where = rx.stdout.readline().strip()
        rx.wait(timeout=30)
        self.assertIn("mobile node(s) restored", self.m.mag_log())
        if got != count:
            where += "; " + dptest.loss_report([(self.m.mag_ns, self.m.mag_instance),
                                                (self.m.lma_ns, f"{self.m.w.prefix}-lma")],
                                               [self.m.mn_ns, self.m.mag_ns, self.m.lma_ns, self.m.cn_ns])
        self.assertEqual(got, count, f"{count - got} of {count} packets lost across the MAG's restart: {where}\n"
                                     f"{self.m.mag_log()[-2000:]}")

    def test_3_sigterm_under_signaling_loss_deregisters_every_mn_and_keys_come_back(self):
        self.start_mag()
        ids = list(range(40))
        for i in ids:
            self.attach(i)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
        before = {k: v for k, v in self.registered_at_lma().items() if k in {mn(i) for i in ids}}
        self.assertEqual(len(before), len(ids))
        rules = ("table inet loss {\n  chain in {\n    type filter hook input priority 0;\n"
                 "    meta l4proto 135 numgen random mod 100 < 20 counter drop\n  }\n}\n")
        for ns in (self.m.lma_ns, self.m.mag_ns):
            ns.run("nft", "-f", "-", input=rules)
        try:
            self.m.mag_proc.send_signal(signal.SIGTERM)
            self.assertEqual(self.m.mag_proc.wait(timeout=60), 0)
            dropped = 0
            for ns in (self.m.lma_ns, self.m.mag_ns):
                out = ns.run("nft", "list", "table", "inet", "loss").stdout
                dropped += int(out.split("counter packets ")[1].split()[0])
            self.assertGreater(dropped, 0, "the loss was real")
        finally:
            for ns in (self.m.lma_ns, self.m.mag_ns):
                ns.run("nft", "delete", "table", "inet", "loss", check=False)
        left = [k for k, v in self.lma_bindings().items() if k in before and v["state"] == "registered"]
        self.assertEqual(left, [], f"still registered at the LMA after the MAG's SIGTERM\n{self.m.mag_log()[-3000:]}")
        self.assertIn("every de-registration answered", self.m.mag_log())
        self.start_mag()
        for i in ids:
            self.attach(i)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
        after = self.registered_at_lma()
        for k, b in before.items():
            self.assertEqual((after[k]["key_uplink"], after[k]["hoa"], after[k]["hnp"]),
                             (b["key_uplink"], b["hoa"], b["hnp"]), f"{k}: within MinDelayBeforeBCEDelete")

    def test_4_a_mag_that_lost_its_state_has_its_bindings_let_go(self):
        self.start_mag()
        ids = list(range(100, 110))
        for i in ids:
            self.attach(i)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
        # (the LMA has heard this MAG's Restart Counter since they registered, before it dies:
        # what the MAG registered after its last answer is left to its lifetime)
        answered = self.m.mag_log().count("heartbeat of our LMA answered")
        self.assertTrue(wait_for(lambda: self.m.mag_log().count("heartbeat of our LMA answered") > answered,
                                 timeout=30))
        down = f"MAG {MAG6} (from {LMA6}) missed"
        downs = self.lma_log().count(down)
        self.kill_mag()
        for f in os.listdir(self.m.mag_state):
            if f != "restart_counter":
                os.unlink(os.path.join(self.m.mag_state, f))   # the journal lost
        # (the LMA sees it fall silent: what it heard before is of its old life)
        self.assertTrue(wait_for(lambda: self.lma_log().count(down) > downs, timeout=30), self.lma_log()[-2000:])
        self.start_mag()
        mine = {mn(i) for i in ids}
        gone = lambda: not any(k in mine and v["state"] == "registered"   # noqa: E731
                               for k, v in self.lma_bindings().items())
        self.assertTrue(wait_for(gone, timeout=30), f"{self.lma_bindings()}\n{self.lma_log()[-3000:]}")
        counts = [int(x.split("restarted: ")[1].split()[0]) for x in self.lma_log().splitlines()
                  if f"MAG {MAG6} restarted:" in x]
        self.assertTrue(counts and counts[-1] >= len(ids), f"{counts}\n{self.lma_log()[-3000:]}")
        self.assertEqual(self.mag_bindings(), {}, "the MAG holds none of them")
        self.assertEqual(self.mag_sessions(), [], "their sessions were orphans at the MAG: removed")

    def test_5_a_journal_cut_or_corrupt_at_its_tail_keeps_what_is_intact(self):
        self.start_mag()
        ids = list(range(120, 150))
        for i in ids:
            self.attach(i)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
        for damage in ("cut", "corrupt"):
            self.kill_mag()
            journals = sorted((f for f in os.listdir(self.m.mag_state) if f.startswith("journal-")),
                              key=lambda f: int(f.split("-")[1]))
            path = os.path.join(self.m.mag_state, journals[-1])
            size = os.path.getsize(path)
            self.assertGreater(size, 100, journals)
            with open(path, "r+b") as f:
                if damage == "cut":
                    f.truncate(size - 7)   # the last record cut short, as a crash mid-write leaves it
                else:
                    f.seek(size - 3)
                    f.write(b"\xff\xfe\xfd")   # its last octets changed: its CRC fails
            self.start_mag()
            log = self.m.mag_log()
            self.assertIn("binding update list journal:", log)
            self.assertIn("cut short" if damage == "cut" else "its CRC does not match", log)
            self.assertIn("are lost", log)
            restored = int(log.split(" mobile node(s) restored")[0].rsplit(" ", 1)[1])
            self.assertGreaterEqual(restored, len(ids) - 1, "all but the MN of the damaged record")
            self.assertTrue(wait_for(lambda: sum(b["state"] == "registered" for b in self.mag_bindings().values())
                                     == restored, timeout=60), self.m.mag_log()[-3000:])
            self.assert_sessions_match_bindings()
            for i in ids:   # the one whose record was lost attaches again (nothing else changes)
                self.attach(i)
            self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))


    def test_6_a_restart_the_lma_sees_late_lets_go_nothing_registered_again(self):
        """The restarted MAG registers its MNs again while its heartbeat answers are lost: the LMA
        marks it down after those PBUs, and sees the new Restart Counter only then. What it heard
        between its last answer with the old counter and then may be the new life's: no binding
        the MAG registered again may be let go."""
        self.start_mag()
        ids = list(range(160, 180))
        for i in ids:
            self.attach(i)
        self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
        self.assertTrue(wait_for(lambda: "heartbeat of our LMA answered" in self.m.mag_log(), timeout=30))
        down = f"MAG {MAG6} (from {LMA6}) missed"
        seen = f"MAG {MAG6} restarted (Restart Counter"
        cut = f"MAG {MAG6} restarted:"
        downs, seens, cuts = (self.lma_log().count(x) for x in (down, seen, cut))
        self.kill_mag()
        rules = ("table inet hb {\n  chain in {\n    type filter hook input priority 0;\n"
                 "    mh type 13 counter drop\n  }\n}\n")
        self.m.lma_ns.run("nft", "-f", "-", input=rules)
        try:
            self.start_mag()
            self.assertTrue(wait_for(lambda: self.all_registered([mn(i) for i in ids]), timeout=60))
            self.assertTrue(wait_for(lambda: self.lma_log().count(down) > downs, timeout=30), self.lma_log()[-2000:])
            out = self.m.lma_ns.run("nft", "list", "table", "inet", "hb").stdout
            self.assertGreater(int(out.split("counter packets ")[1].split()[0]), 0, "answers were lost")
        finally:
            self.m.lma_ns.run("nft", "delete", "table", "inet", "hb", check=False)
        self.assertTrue(wait_for(lambda: self.lma_log().count(seen) > seens, timeout=30), self.lma_log()[-2000:])
        self.assertEqual(self.lma_log().count(cut), cuts, f"bindings let go\n{self.lma_log()[-3000:]}")
        time.sleep(LMA_RESTART_GRACE + 1.0)
        lost = sorted({mn(i) for i in ids} - set(self.registered_at_lma()))
        self.assertEqual(lost, [], f"let go at the LMA though registered again\n{self.lma_log()[-3000:]}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
