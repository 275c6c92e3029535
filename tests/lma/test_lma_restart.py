#!/usr/bin/env python3
"""An LMA restart loses no binding (issue 17): the LMA of test_lma.py, with room for a storm,
killed with SIGKILL at random points of a registration storm (xpmip-loadgen: 400 MNs over IPv4/UDP
5436 with GRE keys), then started again with the same configuration:

- every MN whose PBA said "accepted" before the kill is a binding again, with the same IPv4 home
  address and uplink GRE key;
- the data plane holds exactly the restored bindings' sessions (no orphans left behind by a
  registration cut between its map write and its journal record);
- the storm run again over every MN is answered 0 for all, with the same addresses and keys;
- a sequence-numbered uplink flow of one MN through the LMA's data plane, running across a
  kill -9 and the restart, loses no packet (counted by sequence number at the correspondent);
- after SIGTERM (which unloads the data plane) the journal's sessions are written again.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dataplane"))
import dptest  # noqa: E402
import test_lma as base  # noqa: E402
from dptest import wait_for  # noqa: E402
from test_lma import CN1_4, LMA4, MAG_A4, XPMIP  # noqa: E402

LOADGEN = os.environ.get("XPMIP_LOADGEN", "")
STORM = 400
DOMAIN = "roam.example"    # test_lma.py's mobile_node_domains: realm 1, keys required, IPv4 only
FLOW_PORT = 9999

# Counts distinct sequence numbers of UDP datagrams to FLOW_PORT until 3 s pass without one.
# Counts the distinct sequence numbers that reach FLOW_PORT. Its receive buffer is large (a loaded
# machine may not run it for a while: the flow must not overflow it), and its second line says
# where any loss was: the sequence numbers missing and the kernel's UDP receive-buffer errors.
RECEIVER = f"""
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)   # SO_RCVBUFFORCE
s.bind(("0.0.0.0", {FLOW_PORT}))
print("ready", flush=True)
seen = set()
s.settimeout(60)
while True:
    try:
        data = s.recv(2048)
    except socket.timeout:
        break
    seen.add(struct.unpack("!I", data[:4])[0])
    s.settimeout(3)
udp = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
errors = dict(zip(udp[0], udp[1]))["RcvbufErrors"]
missing = sorted(set(range(max(seen) + 1)) - seen) if seen else []
print(len(seen), flush=True)
print(f"missing {{missing[:20]}} (highest seen {{max(seen) if seen else None}}), UDP RcvbufErrors {{errors}}", flush=True)
"""


# Sends `count` GRE packets (key, inner IPv4/UDP from the MN's home address to the correspondent,
# payload = sequence number) from the MAG's address to the LMA at `pps`.
SENDER = """
import socket, struct, sys, time
mag, lma, key, hoa, cn, port, count, pps = sys.argv[1:9]
key, port, count, pps = int(key), int(port), int(count), float(pps)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return (~(s + (s >> 16))) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
s.bind((mag, 0))
src, dst = socket.inet_aton(hoa), socket.inet_aton(cn)
t0 = time.time()
for i in range(count):
    payload = struct.pack("!I", i) + bytes(28)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0, src, dst))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    gre = struct.pack("!HHI", 0x2000, 0x0800, key)
    s.sendto(gre + bytes(ip) + udp, (lma, 0))
    delay = t0 + (i + 1) / pps - time.time()
    if delay > 0:
        time.sleep(delay)
print("sent", count, flush=True)
"""


class RestartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        plain = base.LmaTest.config_text.__func__
        base.LmaTest.config_text = classmethod(
            lambda c: plain(c).replace(f"limits: {{sessions: {base.SESSIONS}}}", "limits: {sessions: 2048}"))
        base.LmaTest.setUpClass()
        cls.L = base.LmaTest
        cls.files = []

    @classmethod
    def tearDownClass(cls):
        killed = cls.L.lma_proc.poll() is not None   # (a test that failed with the LMA killed)
        base.LmaTest.tearDownClass()
        if killed:
            subprocess.run([dptest.TOOL, "-i", cls.L.instance, "unload"], capture_output=True)
        for f in cls.files:
            if os.path.exists(f):
                os.unlink(f)

    def setUp(self):
        if self.L.lma_proc.poll() is not None:   # (a test that failed with the LMA down)
            self.start_lma()

    # --- helpers ------------------------------------------------------------------------------

    def log_tail(self, n=30):
        return "\n".join(self.L.log_text().splitlines()[-n:])

    def tmpfile(self, name):
        path = os.path.join(self.L.state_dir, "..", f"{os.path.basename(self.L.state_dir)}-{name}")
        path = os.path.abspath(path)
        if os.path.exists(path):
            os.unlink(path)
        self.files.append(path)
        return path

    def start_lma(self):
        L = self.L
        ups = L.log_text().count(" up:")
        L.lma_proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{L.lma_ns.name}", XPMIP, "lma", "-c",
                                       L.cfg_file.name], stdout=L.log, stderr=subprocess.STDOUT)
        L.world.processes.append(L.lma_proc)
        ok = wait_for(lambda: L.log_text().count(" up:") > ups or L.lma_proc.poll() is not None, timeout=60)
        self.assertTrue(ok and L.lma_proc.poll() is None, f"the LMA did not come back:\n{L.log_text()[-3000:]}")

    def kill_lma(self, sig=signal.SIGKILL):
        self.L.lma_proc.send_signal(sig)
        self.L.lma_proc.wait(timeout=30)

    def loadgen(self, *args, out=None, background=False):
        cmd = [LOADGEN, "register", "--lma", LMA4, "--mag", MAG_A4, "--nai", f"mn{{}}@{DOMAIN}", "--no-hnp",
               "--timeout", "1", "--timestamps", *args]
        if out:
            cmd += ["--accepted-out", out]
        if background:
            return self.L.mag_ns.popen(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        r = json.loads(self.L.mag_ns.run(*cmd, timeout=120).stdout)
        r["statuses"] = {k: v["count"] for k, v in r["statuses"].items()}
        return r

    @staticmethod
    def accepted(path):
        out = {}
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if line.endswith("\n"):
                        j = json.loads(line)
                        out[j["mn"]] = j
        return out

    def bindings(self):
        r = subprocess.run([XPMIP, "show", "bindings", "-i", self.L.instance, "--json"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {b["mn"]: b for b in json.loads(r.stdout)}

    def dataplane_sessions(self):
        out = self.L.lma_ns.enter(dptest.TOOL, "-i", self.L.instance, "session", "show").stdout
        return {s["id"] for s in json.loads(out)}

    def assert_maps_match_bindings(self, b):
        want = {x["session"] for x in b.values() if x["state"] == "registered"}
        self.assertEqual(self.dataplane_sessions(), want, "the data plane holds exactly the bindings' sessions")

    def assert_same(self, before, b, what):
        for mn, a in before.items():
            self.assertIn(mn, b, f"{what}: {mn} was accepted before the kill and is gone\n{self.log_tail(30)}")
            self.assertEqual((b[mn]["hoa"], b[mn]["key_uplink"]), (a["hoa"], a["key_uplink"]), f"{what}: {mn}")

    # --- the tests ----------------------------------------------------------------------------

    def test_a_kill_mid_storm_loses_no_accepted_binding(self):
        rng = random.Random(int(os.environ.get("XPMIP_SEED", "17")))
        for rnd in range(3):
            out = self.tmpfile(f"storm{rnd}.jsonl")
            first = rnd * STORM
            gen = self.loadgen("--count", str(STORM), "--first", str(first), "--window", "8", "--rate", "400",
                               out=out, background=True)
            cut = rng.randint(STORM // 8, STORM * 7 // 8)
            reached = wait_for(lambda: len(self.accepted(out)) >= cut or gen.poll() is not None, timeout=60,
                               interval=0.001)
            self.kill_lma()
            gen.kill()
            gen.wait()
            before = self.accepted(out)
            self.assertTrue(reached and 0 < len(before) < STORM,
                            f"round {rnd}: the kill was to land mid-storm ({len(before)} of {STORM} accepted)")
            self.start_lma()
            b = self.bindings()
            self.assert_same(before, b, f"round {rnd}, after the restart")
            self.assert_maps_match_bindings(b)
            # The storm again, every MN of it: all accepted, the same addresses and keys.
            again = self.tmpfile(f"again{rnd}.jsonl")
            r = self.loadgen("--count", str(STORM), "--first", str(first), "--window", "16", out=again)
            self.assertEqual(r["statuses"], {"0": STORM}, r)
            after = self.accepted(again)
            for mn, a in before.items():
                self.assertEqual((after[mn]["hoa"], after[mn]["key_uplink"]), (a["hoa"], a["key_uplink"]), mn)
            self.assert_maps_match_bindings(self.bindings())
        restored = [line for line in self.L.log_text().splitlines() if "binding(s) restored" in line]
        self.assertGreaterEqual(len(restored), 3, "\n".join(restored))

    def test_a_flow_through_the_data_plane_loses_nothing_across_kill_and_restart(self):
        out = self.tmpfile("flow.jsonl")
        r = self.loadgen("--count", "1", "--first", "90000", out=out)
        self.assertEqual(r["statuses"], {"0": 1}, r)
        mn = self.accepted(out)[f"mn90000@{DOMAIN}"]
        rx = self.L.cn1.popen("/usr/bin/python3", "-c", RECEIVER, stdout=subprocess.PIPE, text=True)
        self.assertEqual(rx.stdout.readline().strip(), "ready")
        count, pps = 1500, 300.0
        tx = self.L.mag_ns.popen("/usr/bin/python3", "-c", SENDER, MAG_A4, LMA4, str(mn["key_uplink"]), mn["hoa"],
                                 CN1_4, str(FLOW_PORT), str(count), str(pps), stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)
        self.kill_lma()
        time.sleep(0.5)
        self.start_lma()
        self.assertEqual(tx.stdout.readline().strip(), f"sent {count}")
        tx.wait(timeout=30)
        got = int(rx.stdout.readline().strip() or 0)
        where = rx.stdout.readline().strip()
        rx.wait(timeout=30)
        self.assertTrue("session(s) adopted" in self.L.log_text(), self.log_tail(20))
        if got != count:
            where += "; " + dptest.loss_report([(self.L.lma_ns, self.L.instance)],
                                               [self.L.mag_ns, self.L.lma_ns, self.L.cn1])
        self.assertEqual(got, count, f"{count - got} of {count} packets lost across the restart: {where}\n"
                                     f"{self.log_tail(20)}")
        self.assertIn(f"mn90000@{DOMAIN}", self.bindings())

    def test_after_sigterm_the_journal_writes_the_sessions_again(self):
        out = self.tmpfile("term.jsonl")
        r = self.loadgen("--count", "20", "--first", "80000", out=out)
        self.assertEqual(r["statuses"], {"0": 20}, r)
        before = self.accepted(out)
        self.kill_lma(signal.SIGTERM)   # unloads the data plane (README "Restarts")
        self.start_lma()
        b = self.bindings()
        self.assert_same(before, b, "after SIGTERM")
        self.assert_maps_match_bindings(b)
        last = [line for line in self.L.log_text().splitlines() if "session(s) adopted" in line][-1]
        self.assertRegex(last, r"0 session\(s\) adopted as they were, [1-9]\d* written")


if __name__ == "__main__":
    unittest.main(verbosity=2)
