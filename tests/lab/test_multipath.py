#!/usr/bin/env python3
"""RFC 8278 multipath in the lab (`xpmip lab up`): the MAG's two WAN links, wan0 labelled RED and
wan1 BLUE, each with its own binding at the LMA; both agents steer by the same rules (TCP to port
80 on RED, UDP to port 5001 spread 3:1 packet by packet, the rest on BLUE). Every GRE packet that
crosses the transit bridges br0 (RED) and br1 (BLUE) in xl-wan is recorded by a counting BPF
program on their ports (wan_counter.bpf.c: in crossing order, with the inner headers, TCP
sequence numbers and GRE keys), so nothing depends on what a packet capture happened to keep:

- steering and failover: TCP flows to port 80 and to port 8080 from one MN, each sending every
  20 ms for 10 s. Port 80 flows are on RED, the others on BLUE. RED's link goes down (both ends
  lose carrier) after 3 s: within one second every port 80 flow is on BLUE, with no
  re-registration (the LMA's RED binding stays, shown down); when RED returns they come back.
  No flow is ever split: in TCP sequence order each direction of a flow takes RED, then BLUE,
  then RED (one switch per change, none elsewhere), the other flows never touch RED, and no
  data is lost (every octet echoed).
- per-packet: 40000 UDP packets to port 5001 divide 3:1 between RED and BLUE within ±5 %, while
  a UDP flow to port 5002 sent at the same time stays on BLUE whole; every packet the MN sent
  crossed a bridge once.

Runs as root, serially (the lab's names are fixed).
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_lab  # noqa: E402
from test_lab import STATE, bindings, lab, leftovers, sh  # noqa: E402
from wan_counter import WanCounter  # noqa: E402

PY = "/usr/bin/python3"
RED, BLUE = "br0", "br1"
# The bridge ports in xl-wan: m* face the MAG (uplink packets enter there), l* the LMA (downlink).
PORTS = {"m0": RED, "l0": RED, "m1": BLUE, "l1": BLUE}
UPLINK_PORT, DOWNLINK_PORT = {RED: "m0", BLUE: "m1"}, {RED: "l0", BLUE: "l1"}
COUNTER_OBJ = os.environ.get("XPMIP_WAN_COUNTER", "")
MN_NS, MN_ID, CN_NS, CN = "xl-mn1", "mn1@operator-a.example", "xl-cna", "198.51.100.10"

# Echo servers (CN) and flow clients (MN). `serve PORT...`: echo every connection on each port.
# `flows ADDR SECONDS PORT:N...`: N connections to each port, each sending 100 octets every 20 ms
# and reading the echo; prints {"flows": [{"port", "local_port", "sent", "echoed"}...]}.
FLOWS = r"""
import json, socket, sys, threading, time
mode = sys.argv[1]
if mode == "serve":
    def echo(c):
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    return
                c.sendall(b)
    def listen(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        while True:
            c, _ = s.accept()
            threading.Thread(target=echo, args=(c,), daemon=True).start()
    for p in sys.argv[2:]:
        threading.Thread(target=listen, args=(int(p),), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
elif mode == "flows":
    addr, seconds = sys.argv[2], float(sys.argv[3])
    results, threads = [], []
    def flow(port):
        c = socket.create_connection((addr, port), timeout=10)
        c.settimeout(10)
        r = {"port": port, "local_port": c.getsockname()[1], "sent": 0, "echoed": 0}
        end = time.time() + seconds
        while time.time() < end:
            c.sendall(b"x" * 100); r["sent"] += 100
            while r["echoed"] < r["sent"]:
                r["echoed"] += len(c.recv(65536))
            time.sleep(0.02)
        c.close()
        results.append(r)
    for spec in sys.argv[4:]:
        port, n = map(int, spec.split(":"))
        for _ in range(n):
            threads.append(threading.Thread(target=flow, args=(port,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"flows": results}), flush=True)
elif mode == "udp":
    # udp ADDR RATE PORT:COUNT...: the ports' packets interleaved, at RATE packets per second.
    addr, rate = sys.argv[2], float(sys.argv[3])
    plan = [(int(p), int(n)) for p, n in (s.split(":") for s in sys.argv[4:])]
    socks = {p: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for p, _ in plan}
    left = dict(plan)
    start, sent = time.time(), 0
    while any(left.values()):
        for p in left:
            if left[p]:
                socks[p].sendto(b"y" * 64, (addr, p)); left[p] -= 1; sent += 1
        ahead = start + sent / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"sent": sent}), flush=True)
"""


def seq_runs(segments):
    """The links a TCP direction took, in the sender's order (sequence numbers from the first
    segment seen, each sequence number counted once: where it first crossed), runs merged."""
    if not segments:
        return [], []
    base = segments[0]["seq"]
    first = {}
    for p in segments:
        first.setdefault((p["seq"] - base) % (1 << 32), p)
    ordered = [first[k] for k in sorted(first)]
    runs, groups = [], []
    for p in ordered:
        if not runs or runs[-1] != p["link"]:
            runs.append(p["link"])
            groups.append([])
        groups[-1].append(p)
    return runs, groups


def set_red(up):
    """RED's link: both of br0's ports, so that the MAG's wan0 and the LMA's tun0 lose (or get
    back) their carrier, as when an access network fails."""
    state = "up" if up else "down"
    r = subprocess.run(["ip", "-n", "xl-wan", "-batch", "-"], input=f"link set m0 {state}\nlink set l0 {state}\n",
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise AssertionError(f"ip link set m0/l0 {state}: {r.stderr}")


class Multipath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        test_lab.refuse_if_a_lab_is_up()
        r = lab("up")
        if r.returncode != 0:
            lab("down")
            raise RuntimeError(f"xpmip lab up failed:\n{r.stdout}{r.stderr}")
        cls.up_output = r.stdout
        cls.counter = None
        try:
            cls.counter = WanCounter(COUNTER_OBJ, PORTS)
        except BaseException:
            cls.tearDownClass()
            raise
        cls.server = subprocess.Popen(["ip", "netns", "exec", CN_NS, PY, "-c", FLOWS, "serve", "80", "8080"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if cls.server.stdout.readline().strip() != "ready":
            cls.tearDownClass()
            raise RuntimeError("the echo server did not start")

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "server", None):
            cls.server.kill()
            cls.server.wait()
            cls.server.stdout.close()
            cls.server.stderr.close()
        if getattr(cls, "counter", None):
            cls.counter.close()
        set_red(True) if os.path.exists("/run/netns/xl-wan") else None
        r = lab("down")
        assert r.returncode == 0, r.stdout + r.stderr
        assert leftovers() == [], leftovers()

    def mn_binding(self, config):
        return bindings(f"{STATE}/{config}")[MN_ID]

    def path(self, b, label):
        return next(p for p in b["paths"] if p["label_name"] == label)

    def test_both_paths_registered_with_their_own_keys_and_labels(self):
        mag, lma = self.mn_binding("mag.yaml"), self.mn_binding("lma.yaml")
        self.assertTrue(mag["multipath"] and lma["multipath"])
        self.assertEqual(lma["mag_id"], "xl-mag.lab.example", "MAG Identifier option (RFC 8278 §4.2)")
        self.assertEqual([(p["bid"], p["label_name"]) for p in lma["paths"]], [(1, "red"), (2, "blue")])
        for label in ("red", "blue"):
            m, l = self.path(mag, label), self.path(lma, label)
            self.assertEqual((m["state"], m["up"], l["up"]), ("registered", True, True))
            self.assertEqual((m["key_uplink"], m["key_downlink"]), (l["key_uplink"], l["key_downlink"]))
        self.assertNotEqual(self.path(lma, "red")["key_uplink"], self.path(lma, "blue")["key_uplink"],
                            "RFC 5845 keys belong to one binding: each path has its own")
        for log in ("lma.log", "mag.log"):   # both agents say which rules they steer by
            self.assertEqual(self.log_count(log, "steering rule web: proto 6 remote ports 80-80 -> red, blue"), 1)
            self.assertEqual(self.log_count(log, "steering rule spread: proto 17 remote ports 5001-5001 -> red, "
                                                 "blue (per packet, by weight)"), 1)

    def keys(self):
        """The GRE key each link's packets carry, per direction, from the MAG's binding."""
        mag = self.mn_binding("mag.yaml")
        return {(link, d): self.path(mag, label)[f"key_{d}"] for link, label in ((RED, "red"), (BLUE, "blue"))
                for d in ("uplink", "downlink")}

    def check_link_and_key(self, p, direction, keys):
        port = (UPLINK_PORT if direction == "uplink" else DOWNLINK_PORT)[p["link"]]
        self.assertEqual(p["port"], port, f"{direction} packet entered {p['link']} from the wrong side: {p}")
        self.assertEqual(p["key"], keys[(p["link"], direction)], f"{direction} GRE key on {p['link']}: {p}")

    def test_port_80_on_red_the_rest_on_blue_failover_within_1s_and_back_never_split(self):
        hoa = self.mn_binding("mag.yaml")["hoa"]
        keys = self.keys()
        pbus_before = self.log_count("mag.log", "PBU mn=")
        self.counter.reset()
        client = subprocess.Popen(["ip", "netns", "exec", MN_NS, PY, "-c", FLOWS, "flows", CN, "10", "80:4",
                                   "8080:4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        t_down = time.monotonic()
        set_red(False)
        t_down_done = time.monotonic()   # both ends without carrier from here on
        time.sleep(1.5)
        lma_during = self.path(self.mn_binding("lma.yaml"), "red")
        mag_during = self.path(self.mn_binding("mag.yaml"), "red")
        time.sleep(1.5)
        t_up = time.monotonic()
        set_red(True)
        t_up_done = time.monotonic()
        out, err = client.communicate(timeout=60)
        self.assertEqual(client.returncode, 0, err)
        pkts = self.counter.records()
        flows = json.loads(out)["flows"]
        self.assertEqual(len(flows), 8)
        for f in flows:
            self.assertEqual(f["echoed"], f["sent"], f"flow {f}: every octet came back")
            self.assertGreater(f["sent"], 100 * 200, f)
        # RED's binding stayed (no re-registration), shown down at both ends while it was down.
        self.assertEqual((lma_during["up"], mag_during["up"], mag_during["state"]), (False, False, "registered"))
        self.assertEqual(self.log_count("mag.log", "PBU mn="), pbus_before, "no PBU was sent for the failover")
        self.assertTrue(self.path(self.mn_binding("lma.yaml"), "red")["up"])
        self.assertLess(t_down_done - t_down, 5, "ip link set took too long")

        for f in flows:
            port = f["local_port"]
            for direction in ("uplink", "downlink"):
                with self.subTest(flow=f"{f['port']}/{port}", direction=direction):
                    # The whole 5-tuple: the MN may use one local port for a port 80 and a port 8080
                    # connection at once (a 4-tuple is unique, a local port need not be).
                    if direction == "uplink":
                        mine = [p for p in pkts if (p["proto"], p["src"], p["dst"], p["sport"], p["dport"]) ==
                                (6, hoa, CN, port, f["port"])]
                    else:
                        mine = [p for p in pkts if (p["proto"], p["src"], p["dst"], p["sport"], p["dport"]) ==
                                (6, CN, hoa, f["port"], port)]
                    for p in mine:
                        self.check_link_and_key(p, direction, keys)
                    data = [p for p in mine if p["payload"] > 0]
                    # Every send of the flow crossed a bridge (retransmissions may add some).
                    self.assertGreaterEqual(sum(p["payload"] for p in data), f["sent"])
                    runs, groups = seq_runs(data)
                    crossing = [p["link"] for p in data]
                    switches = sum(1 for a, b in zip(crossing, crossing[1:]) if a != b)
                    # A segment on both links: only a retransmission of what was in flight when RED
                    # went down (one send outstanding per flow); a flow copied onto both would show here.
                    on = {b: {(p["seq"], p["payload"]) for p in data if p["link"] == b} for b in (RED, BLUE)}
                    both = len(on[RED] & on[BLUE])
                    why = (f"links in sequence order {runs}; {switches} switches in crossing order; "
                           f"{both} segments on both links")
                    self.assertLessEqual(both, 2, why)
                    if f["port"] != 80:
                        self.assertEqual(runs, [BLUE], f"the rest stays on BLUE, RED down or not: {why}")
                        continue
                    # Never split: RED, then BLUE once RED is down, then RED once it is back.
                    self.assertEqual(runs, [RED, BLUE, RED], f"one link at a time: {why}")
                    last_red_before = max(p["t"] for p in groups[0])
                    first_blue = min(p["t"] for p in groups[1])
                    back_on_red = min(p["t"] for p in groups[2])
                    self.assertLess(last_red_before, t_down_done + 0.05, "nothing on RED after its link went down")
                    self.assertLess(first_blue - t_down_done, 1.0, "on BLUE within one second of RED's carrier loss")
                    self.assertGreater(back_on_red, t_up - 0.05)
                    self.assertLess(back_on_red - t_up_done, 1.0, "back on RED within one second of its return")

    def test_per_packet_rule_spreads_3_to_1_and_a_per_flow_one_stays_whole(self):
        hoa = self.mn_binding("mag.yaml")["hoa"]
        keys = self.keys()
        self.counter.reset()
        r = sh("ip", "netns", "exec", MN_NS, PY, "-c", FLOWS, "udp", CN, "5000", "5001:40000", "5002:2000",
               timeout=120)
        self.assertEqual(json.loads(r.stdout)["sent"], 42000)
        up = [p for p in self.counter.records() if p["src"] == hoa and p["proto"] == 17]
        for p in up:
            self.check_link_and_key(p, "uplink", keys)
        spread = {b: sum(1 for p in up if p["dport"] == 5001 and p["link"] == b) for b in (RED, BLUE)}
        whole = {b: sum(1 for p in up if p["dport"] == 5002 and p["link"] == b) for b in (RED, BLUE)}
        # Counted where they cross, not captured: each packet the MN sent crossed one bridge once.
        self.assertEqual(spread[RED] + spread[BLUE], 40000, f"port 5001 packets per link: {spread}")
        self.assertEqual(whole, {RED: 0, BLUE: 2000}, "a per-flow flow is never split, and all of it arrives")
        ratio = spread[RED] / spread[BLUE]
        self.assertLess(abs(ratio - 3.0), 3.0 * 0.05, f"RED:BLUE = {ratio:.3f} ({spread}), weights 3:1")

    def log_count(self, log, needle):
        with open(f"{STATE}/{log}") as f:
            return f.read().count(needle)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("skipped: needs root", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
