#!/usr/bin/env python3
"""The LMA's control plane around signaling (README "Metrics", "Control socket", "Logs under
attack"), against the real agent of tests/lma/test_lma.py (its namespaces, configuration and
scripted MAG):

- the Prometheus endpoint carries aggregates with the right values after a known set of
  registrations, rejections and malformed messages, and no series per session;
- clients of the metrics endpoint and of the control socket that send slowly, read nothing or
  never finish do not hold signaling: PBUs are answered meanwhile, and `xpmip show` too;
- `xpmip show` pages its requests and finds one MN by --mn;
- repeated rejections are logged a few times per source and reason, the rest counted.

Every figure is a count (PBAs received, log lines, counters), never a timing."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_lma as base  # noqa: E402  (a module, not its TestCase: its tests do not run here)
from test_lma import MAG_A6, MAG_A4, ROGUE6, S_ACCEPTED, S_MAG_NOT_AUTHORIZED, S_NOT_LMA, XPMIP  # noqa: E402
from dptest import wait_for  # noqa: E402

from scapy.layers.inet6 import IPv6, MIP6MH_BU  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# A client that holds a connection to the metrics endpoint from inside the LMA's namespace:
# "noread" sends a request and reads nothing, "drip" sends its request one octet every 0.9 s.
HOLDER = r"""
import socket, sys, time
mode, hold = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(('127.0.0.1', 9430))
req = b'GET /metrics HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\nAccept: */*\r\n\r\n'
if mode == 'noread':
    s.sendall(req)
print('ready', flush=True)
end = time.time() + hold
i = 0
while time.time() < end:
    if mode == 'drip' and i < len(req):
        s.send(req[i:i + 1])
        i += 1
    time.sleep(0.9)
print('sent', i, flush=True)
"""


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample(metrics, name, **labels):
    return metrics.get((name, frozenset(labels.items())))


def total(metrics, name, **labels):
    """The sum of every sample of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= ls)


class ControlPlaneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The agent of test_lma.py, with a subscriber store (README "Subscribers") as well.
        cls.store_dir = tempfile.mkdtemp(prefix="xpmip-cp-store-")
        plain = base.LmaTest.config_text.__func__
        base.LmaTest.config_text = classmethod(
            lambda c: f"subscriber_store: {cls.store_dir}/subscribers.lmdb\n" + plain(c))
        base.LmaTest.setUpClass()
        cls.t = base.LmaTest("test_rfc5213_160_missing_mn_identifier")
        cls.sock_path = f"/run/xpmip/{base.LmaTest.instance}.sock"

    @classmethod
    def tearDownClass(cls):
        base.LmaTest.tearDownClass()
        shutil.rmtree(cls.store_dir, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------------------

    def scrape(self):
        text = base.LmaTest.lma_ns.run("/usr/bin/python3", "-c", (
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9430/metrics',"
            "timeout=10).read().decode())")).stdout
        return parse_metrics(text), text

    def register(self, mn, **kw):
        return self.t.send6(self.t.pbu(mn, **kw))

    def control(self, req, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock_path)
        s.sendall((json.dumps(req) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data)

    def show(self, *args):
        r = subprocess.run([XPMIP, "show", "-i", base.LmaTest.instance, *args], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def refreshes_answered(self, mns, rounds):
        """Re-register every MN `rounds` times; how many PBAs came back accepted."""
        accepted = 0
        for _ in range(rounds):
            for mn in mns:
                pba = self.register(mn)
                accepted += pba.status == S_ACCEPTED
        return accepted

    # --- subscriber store ---------------------------------------------------------------------

    def subscribers(self, *args):
        r = subprocess.run([XPMIP, "subscribers", *args, "-c", base.LmaTest.cfg_file.name], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def test_the_running_lma_uses_store_changes_from_the_next_pbu(self):
        self.assertEqual(self.register("stored1@op1.example").status, S_NOT_LMA)
        self.subscribers("add", "--id", "stored1@op1.example", "--realm", "1", "--ipv4", "false",
                         "--home-network-prefix", "2001:db8:a:f1::/64")
        pba = self.t.send6(self.t.pbu("stored1@op1.example", hnp="2001:db8:a:f1::/64"))
        self.assertEqual(pba.status, S_ACCEPTED)
        self.assertEqual(pba.hnp, "2001:db8:a:f1::/64", "its stored static prefix")
        csv = os.path.join(self.store_dir, "more.csv")
        with open(csv, "w") as f:
            f.write("id,realm,gre\nstored2@op2.example,2,\nstored3@op1.example,1,keys-required\n")
        self.assertIn("2 subscribers", self.subscribers("import", csv))
        self.assertEqual(self.register("stored2@op2.example").status, S_ACCEPTED)
        # keys-required in its profile: a PBU without a GRE Key option gets 163 (RFC 5845 §5.1).
        self.assertEqual(self.register("stored3@op1.example").status, base.S_GRE_REQUIRED)
        self.subscribers("remove", "stored3@op1.example")
        self.assertEqual(self.register("stored3@op1.example").status, S_NOT_LMA)

    # --- metrics ------------------------------------------------------------------------------

    def test_metrics_carry_the_aggregates_of_what_happened(self):
        before, _ = self.scrape()
        accepted_before = sample(before, "xpmip_pba_sent_total", code="0", peer="mag-a", status="ACCEPTED") or 0
        pbus_before = sample(before, "xpmip_pbu_received_total", peer="mag-a") or 0
        malformed_before = sample(before, "xpmip_signaling_malformed_total") or 0
        # 3 registrations of 3 MNs, 2 of an MN nobody configured (153), 1 from an unknown MAG (154).
        for mn in ("mn10@op1.example", "mn11@op1.example", "mn12@op1.example"):
            self.assertEqual(self.register(mn).status, S_ACCEPTED)
        for _ in range(2):
            self.assertEqual(self.register("nobody@op1.example").status, S_NOT_LMA)
        self.assertEqual(self.t.send6(self.t.pbu("mn13@op1.example"), src=ROGUE6).status, S_MAG_NOT_AUTHORIZED)
        # 2 malformed PBUs (GRE Key option of length 3): dropped, counted.
        bad = IPv6(src=MAG_A6, dst=base.LMA6) / MIP6MH_BU(seq=1, flags="AHP", mhtime=10, options=[
            base.o_mnid("mn14@op1.example"), base.o_hnp(), base.opt(33, b"\0\0\0")])
        for _ in range(2):
            self.t.ask(op="send6", packet=bytes(bad).hex())
        # One de-registration: held (RFC 5213 §5.3.5), a binding in state "deregistered".
        self.assertEqual(self.register("mn12@op1.example", lifetime=0).status, S_ACCEPTED)

        def settled():
            m, _ = self.scrape()
            return (sample(m, "xpmip_signaling_malformed_total") == malformed_before + 2 and
                    total(m, "xpmip_bindings", peer="mag-a", realm="1", state="deregistered") == 1)
        self.assertTrue(wait_for(settled, timeout=20, interval=0.5), self.t.log_tail())
        m, text = self.scrape()
        self.assertEqual(sample(m, "xpmip_pba_sent_total", code="0", peer="mag-a", status="ACCEPTED"),
                         accepted_before + 4)
        self.assertEqual(sample(m, "xpmip_pba_sent_total", code="153", peer="mag-a",
                                status="NOT_LMA_FOR_THIS_MOBILE_NODE"), 2)
        self.assertEqual(sample(m, "xpmip_pba_sent_total", code="154", peer="unknown",
                                status="MAG_NOT_AUTHORIZED_FOR_PROXY_REG"), 1)
        self.assertEqual(sample(m, "xpmip_pbu_received_total", peer="mag-a"), pbus_before + 6)
        self.assertEqual(sample(m, "xpmip_pbu_received_total", peer="unknown"), 1)
        self.assertEqual(total(m, "xpmip_bindings", peer="mag-a", realm="1", state="registered"), 2)
        self.assertEqual(total(m, "xpmip_bindings"), len(json.loads(self.show("bindings", "--json"))))
        self.assertIsNotNone(sample(m, "xpmip_dataplane_events_total", counter="drop_unknown_key"))
        self.assertNotIn('session="', text, "no series per session")
        self.assertNotIn('mn="', text, "no series per mobile node")

        # Paths and traffic per peer come from a background pass over the maps: its figures show
        # up within a pass or two after the first scrape.
        paths = json.loads(self.show("paths", "--json"))
        up = sum(1 for p in paths if p["remote"] == MAG_A6 and p["up"])
        self.assertGreaterEqual(up, 2)

        def paths_counted():
            m, _ = self.scrape()
            return sample(m, "xpmip_paths", label="0", peer=MAG_A6, state="up") == up
        self.assertTrue(wait_for(paths_counted, timeout=40, interval=1), self.scrape()[1])
        self.assertIsNotNone(sample(self.scrape()[0], "xpmip_path_packets", direction="rx", label="0", peer=MAG_A6))

    # --- slow clients -------------------------------------------------------------------------

    def test_slow_metrics_clients_do_not_stall_signaling(self):
        mns = [f"mn{i:02d}@op1.example" for i in range(20, 24)]
        for mn in mns:
            self.assertEqual(self.register(mn).status, S_ACCEPTED)
        holders = [base.LmaTest.lma_ns.popen("/usr/bin/python3", "-c", HOLDER, mode, "12", stdout=subprocess.PIPE,
                                             text=True) for mode in ("noread", "drip", "drip")]
        try:
            for h in holders:
                self.assertEqual(h.stdout.readline().strip(), "ready")
            # While they hold their connections: every PBU answered, and a plain scrape served.
            self.assertEqual(self.refreshes_answered(mns, 3), 12)
            m, _ = self.scrape()
            self.assertIsNotNone(sample(m, "xpmip_signaling_malformed_total"))
            self.assertIsNone(holders[1].poll(), "the slow client is still sending")
        finally:
            for h in holders:
                h.wait(timeout=60)
        self.assertIsNone(base.LmaTest.lma_proc.poll())

    def test_slow_control_clients_do_not_stall_signaling(self):
        mns = [f"mn{i:02d}@op1.example" for i in range(24, 28)]
        for mn in mns:
            self.assertEqual(self.register(mn).status, S_ACCEPTED)
        silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        silent.connect(self.sock_path)                       # says nothing
        drip = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        drip.connect(self.sock_path)                         # one octet every 0.9 s
        deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        deaf.connect(self.sock_path)
        deaf.sendall((json.dumps({"command": "show", "what": "bindings", "limit": 10000}) + "\n").encode())
        request = (json.dumps({"command": "show", "what": "bindings"}) + "\n").encode()
        try:
            for i in range(6):
                drip.send(request[i:i + 1])
                time.sleep(0.9)
                # Meanwhile: PBUs answered, and another client's `show` answered.
                self.assertEqual(self.refreshes_answered(mns[i % 4:i % 4 + 1], 1), 1)
            table = json.loads(self.show("bindings", "--json"))
            self.assertTrue({b["mn"] for b in table} >= set(mns))
            # The silent client is closed after the request timeout (5 s): a read sees the end.
            silent.settimeout(30)
            self.assertEqual(silent.recv(100), b"")
        finally:
            for s in (silent, drip, deaf):
                s.close()
        self.assertIsNone(base.LmaTest.lma_proc.poll())

    def test_control_clients_beyond_the_limit_are_told_and_closed(self):
        conns, refused = [], 0
        try:
            for _ in range(20):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                conns.append(s)
            for s in conns:
                s.settimeout(0.5)
                try:
                    line = s.recv(4096)
                except socket.timeout:
                    continue
                if b"control clients at once" in line:
                    refused += 1
            self.assertGreaterEqual(refused, 4, "16 clients at once, the rest refused")
            self.assertLess(refused, 20)
        finally:
            for s in conns:
                s.close()
        # Once they are gone, clients are served again.
        self.assertTrue(wait_for(lambda: self.control({"command": "ping"}).get("ok"), timeout=20))

    # --- paged show ---------------------------------------------------------------------------

    def test_show_pages_its_requests_and_finds_one_mn(self):
        mns = [f"mn{i:02d}@op1.example" for i in range(30, 35)]
        for mn in mns:
            self.assertEqual(self.register(mn).status, S_ACCEPTED)
        page = self.control({"command": "show", "what": "bindings", "limit": 2})
        self.assertEqual(len(page["result"]), 2)
        self.assertEqual(page["next"], page["result"][-1]["mn"])
        rest = self.control({"command": "show", "what": "bindings", "limit": 2, "after": page["next"]})
        self.assertTrue(all(b["mn"] > page["next"] for b in rest["result"]))
        whole = json.loads(self.show("bindings", "--json"))
        paged = json.loads(self.show("bindings", "--json", "--page", "1"))
        self.assertEqual([b["mn"] for b in paged], [b["mn"] for b in whole])
        self.assertEqual(len({b["mn"] for b in whole}), len(whole), "no entry twice across pages")
        one = json.loads(self.show("bindings", "--json", "--mn", "mn31@op1.example"))
        self.assertEqual([b["mn"] for b in one], ["mn31@op1.example"])
        self.assertEqual(json.loads(self.show("bindings", "--json", "--mn", "nobody@op1.example")), [])
        sessions = json.loads(self.show("sessions", "--json"))
        self.assertEqual([s["id"] for s in json.loads(self.show("sessions", "--json", "--page", "2"))],
                         [s["id"] for s in sessions])
        bad = self.control({"command": "show", "what": "bindings", "limit": 0})
        self.assertIn("limit: 0 is not 1-10000", bad["error"])

    # --- logs under attack --------------------------------------------------------------------

    def test_repeated_rejections_are_rate_limited_and_counted(self):
        before, _ = self.scrape()
        suppressed_before = sample(before, "xpmip_log_suppressed_total", reason="NOT_LMA_FOR_THIS_MOBILE_NODE") or 0
        lines_before = self.t.log_text().count("PBU mn=flood@op1.example")
        t0 = time.monotonic()
        for _ in range(30):
            self.assertEqual(self.t.send4(self.t.pbu("flood@op1.example", hnp=None, v4=True), src=MAG_A4).status,
                             S_NOT_LMA)
        windows = int((time.monotonic() - t0) // 10) + 1
        self.assertTrue(wait_for(lambda: (sample(self.scrape()[0], "xpmip_log_suppressed_total",
                                                 reason="NOT_LMA_FOR_THIS_MOBILE_NODE") or 0) > suppressed_before,
                                 timeout=20, interval=0.5))
        written = self.t.log_text().count("PBU mn=flood@op1.example") - lines_before
        m, _ = self.scrape()
        suppressed = sample(m, "xpmip_log_suppressed_total", reason="NOT_LMA_FOR_THIS_MOBILE_NODE") - suppressed_before
        self.assertEqual(written + suppressed, 30, "every rejection either logged or counted")
        self.assertLessEqual(written, 5 * windows)


if __name__ == "__main__":
    unittest.main(verbosity=2)
