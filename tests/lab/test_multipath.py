#!/usr/bin/env python3
"""RFC 8278 multipath in the lab (`xpmip lab up`): the MAG's two WAN links, wan0 labelled RED and
wan1 BLUE, each with its own binding at the LMA; both agents steer by the same rules (TCP to port
80 on RED, UDP to port 5001 spread 3:1 packet by packet, the rest on BLUE). Everything is measured
with tshark on the transit bridges br0 (RED) and br1 (BLUE) in xl-wan, decoding the GRE packets'
inner headers, in both directions:

- steering and failover: TCP flows to port 80 and to port 8080 from one MN, each sending every
  20 ms for 10 s. Port 80 flows are on RED, the others on BLUE. RED's link goes down (both ends
  lose carrier) after 3 s: within one second every port 80 flow is on BLUE, with no
  re-registration (the LMA's RED binding stays, shown down); when RED returns they come back.
  No flow is ever split: each direction of a flow uses one link at any time (one switch per
  change, none elsewhere), the other flows never touch RED, and no data is lost (every octet
  echoed).
- per-packet: 40000 UDP packets to port 5001 divide 3:1 between RED and BLUE within ±5 %, while
  a UDP flow to port 5002 sent at the same time stays on BLUE whole.

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

PY = "/usr/bin/python3"
RED, BLUE = "br0", "br1"
LINK = {RED: ("192.0.2.10", "192.0.2.1"), BLUE: ("203.0.113.10", "203.0.113.1")}   # MAG, LMA
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


class Capture(test_lab.Capture):
    """tshark on one WAN bridge: GRE packets with their time, outer and inner headers."""

    def __init__(self, bridge):
        super().__init__(bridge, buffer_mib=64)   # 40000 packets in a few seconds

    def stop(self):
        self.finish()
        out = sh("tshark", "-r", self.path, "-Y", "gre", "-T", "fields", "-E", "separator=;", "-E", "occurrence=a",
                 "-E", "aggregator=,", "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto",
                 "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport",
                 "-e", "gre.key", timeout=120).stdout
        pkts = []
        for line in out.splitlines():
            t, src, dst, proto, tsp, tdp, usp, udp_, key = line.split(";")
            src, dst, proto = src.split(","), dst.split(","), proto.split(",")
            pkts.append({"t": float(t), "outer": (src[0], dst[0]), "inner": (src[-1], dst[-1]),
                         "proto": int(proto[-1]) if proto[-1] else 0,
                         "sport": int(tsp or usp or 0), "dport": int(tdp or udp_ or 0),
                         "key": int(key, 0) if key else None, "link": self.iface})
        return pkts


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

    def test_port_80_on_red_the_rest_on_blue_failover_within_1s_and_back_never_split(self):
        hoa = self.mn_binding("mag.yaml")["hoa"]
        pbus_before = self.log_count("mag.log", "PBU mn=")
        caps = {b: Capture(b) for b in (RED, BLUE)}
        try:
            client = subprocess.Popen(["ip", "netns", "exec", MN_NS, PY, "-c", FLOWS, "flows", CN, "10", "80:4",
                                       "8080:4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(3)
            t_down = time.time()
            set_red(False)
            t_down_done = time.time()   # both ends without carrier from here on
            time.sleep(1.5)
            lma_during = self.path(self.mn_binding("lma.yaml"), "red")
            mag_during = self.path(self.mn_binding("mag.yaml"), "red")
            time.sleep(1.5)
            t_up = time.time()
            set_red(True)
            t_up_done = time.time()
            out, err = client.communicate(timeout=30)
            self.assertEqual(client.returncode, 0, err)
            pkts = [p for c in caps.values() for p in c.stop()]
        finally:
            for c in caps.values():
                c.close()
        flows = json.loads(out)["flows"]
        self.assertEqual(len(flows), 8)
        for f in flows:
            self.assertEqual(f["echoed"], f["sent"], f"flow {f}: every octet came back")
            self.assertGreater(f["sent"], 100 * 200, f)
        # RED's binding stayed (no re-registration), shown down at both ends while it was down.
        self.assertEqual((lma_during["up"], mag_during["up"], mag_during["state"]), (False, False, "registered"))
        self.assertEqual(self.log_count("mag.log", "PBU mn="), pbus_before, "no PBU was sent for the failover")
        self.assertTrue(self.path(self.mn_binding("lma.yaml"), "red")["up"])

        for f in flows:
            port = f["local_port"]
            for direction in ("uplink", "downlink"):
                with self.subTest(flow=f"{f['port']}/{port}", direction=direction):
                    if direction == "uplink":
                        mine = [p for p in pkts if p["inner"][0] == hoa and p["sport"] == port]
                    else:
                        mine = [p for p in pkts if p["inner"][1] == hoa and p["dport"] == port]
                    mine.sort(key=lambda p: p["t"])
                    self.assertGreater(len(mine), 100)
                    for p in mine:
                        mag_addr, lma_addr = LINK[p["link"]]
                        self.assertEqual(p["outer"], (mag_addr, lma_addr) if direction == "uplink" else (lma_addr, mag_addr))
                    links = [p["link"] for p in mine]
                    runs = [links[0]] + [b for a, b in zip(links, links[1:]) if a != b]
                    if f["port"] != 80:
                        self.assertEqual(runs, [BLUE], "the rest stays on BLUE, RED down or not")
                        continue
                    # Never split: RED, then BLUE once RED is down, then RED once it is back.
                    self.assertEqual(runs, [RED, BLUE, RED], "one link at a time")
                    first_blue = next(p["t"] for p in mine if p["link"] == BLUE)
                    last_red_before = max(p["t"] for p in mine if p["link"] == RED and p["t"] < first_blue)
                    back_on_red = next(p["t"] for p in mine if p["link"] == RED and p["t"] > first_blue)
                    self.assertLess(last_red_before, t_down_done + 0.05, "nothing on RED after its link went down")
                    self.assertLess(first_blue - t_down_done, 1.0, "on BLUE within one second of RED's carrier loss")
                    self.assertGreater(back_on_red, t_up - 0.05)
                    self.assertLess(back_on_red - t_up_done, 1.0, "back on RED within one second of its return")

    def test_per_packet_rule_spreads_3_to_1_and_a_per_flow_one_stays_whole(self):
        hoa = self.mn_binding("mag.yaml")["hoa"]
        caps = {b: Capture(b) for b in (RED, BLUE)}
        try:
            r = sh("ip", "netns", "exec", MN_NS, PY, "-c", FLOWS, "udp", CN, "5000", "5001:40000", "5002:2000",
                   timeout=120)
            self.assertEqual(json.loads(r.stdout)["sent"], 42000)
            pkts = [p for c in caps.values() for p in c.stop()]
        finally:
            for c in caps.values():
                c.close()
        up = [p for p in pkts if p["inner"][0] == hoa and p["proto"] == 17]
        spread = {b: sum(1 for p in up if p["dport"] == 5001 and p["link"] == b) for b in (RED, BLUE)}
        whole = {b: sum(1 for p in up if p["dport"] == 5002 and p["link"] == b) for b in (RED, BLUE)}
        # (tshark may miss a few on a busy machine: what it saw is a sample, enough for the ratio.)
        self.assertGreater(spread[RED] + spread[BLUE], 40000 * 0.9, f"captured {spread}")
        ratio = spread[RED] / spread[BLUE]
        self.assertLess(abs(ratio - 3.0), 3.0 * 0.05, f"RED:BLUE = {ratio:.3f} ({spread}), weights 3:1")
        self.assertEqual(whole[RED], 0, f"a per-flow flow is never split: {whole}")
        self.assertGreater(whole[BLUE], 2000 * 0.9)

    def log_count(self, log, needle):
        with open(f"{STATE}/{log}") as f:
            return f.read().count(needle)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("skipped: needs root", file=sys.stderr)
        sys.exit(77)
    unittest.main(verbosity=2)
