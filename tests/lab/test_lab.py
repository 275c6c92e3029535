#!/usr/bin/env python3
"""`xpmip lab up|down|status|demo`: RFC 5845 Figure 1 in network namespaces, driven from outside.

- The demo: exit 0, every MN's ping and TCP results, the session tables, the watch commands,
  and nothing left behind (namespaces, pins, agents, control sockets, state directory).
- Keys on the wire: `lab up`, traffic from each MN in turn (ping and TCP over IPv4 and IPv6,
  sent by tools of our own, not the lab's), tshark on the transit bridge: the GRE packets
  MAG -> LMA carry exactly the uplink key and LMA -> MAG exactly the downlink key that
  `xpmip show bindings --json` reports on both agents for that MN, around its own addresses.
- `lab up` while up is refused with a clear message; `lab down` twice is fine.
- A half-built lab (an agent killed with its data plane still pinned; stray namespaces and
  state) is reported by `status` and removed by `down`.

Runs as root, serially: the lab's names are fixed (xl-*), so a lab already up on this host is
an error, not something the test removes.
"""
import ipaddress
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest

XPMIP = os.environ.get("XPMIP_BIN", "")
PY = "/usr/bin/python3"
STATE = "/run/xpmip/lab"
PINS = "/sys/fs/bpf/xpmip"
INSTANCES = ("xl-lma", "xl-mag")
NAMESPACES = ("xl-lma", "xl-mag", "xl-wan", "xl-cna", "xl-cnb", "xl-mn1", "xl-mn2", "xl-mn3", "xl-mn4")
MAG4, LMA4 = "192.0.2.10", "192.0.2.1"            # wan0 (RED): TCP to port 80
MAG4_BLUE, LMA4_BLUE = "203.0.113.10", "203.0.113.1"   # wan1 (BLUE): everything else
# MN namespace -> (MN-ID, realm, its CN's namespace, CN IPv4, CN IPv6)
MNS = {
    "xl-mn1": ("mn1@operator-a.example", 1, "xl-cna", "198.51.100.10", "2001:db8:ca::10"),
    "xl-mn2": ("mn2@operator-a.example", 1, "xl-cna", "198.51.100.10", "2001:db8:ca::10"),
    "xl-mn3": ("mn3@operator-b.example", 2, "xl-cnb", "198.51.100.10", "2001:db8:cb::10"),
    "xl-mn4": ("mn4@operator-b.example", 2, "xl-cnb", "198.51.100.10", "2001:db8:cb::10"),
}

# A TCP peer for the namespaces: `serve ADDR PORT` prints "ready", takes one connection, reads
# it to the end and answers with the octet count; `send ADDR PORT N` sends N octets and prints
# the answer.
TCP_PEER = r"""
import socket, sys
mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
if mode == "serve":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(1); print("ready", flush=True)
    c, _ = s.accept(); c.settimeout(20); n = 0
    while True:
        b = c.recv(65536)
        if not b: break
        n += len(b)
    c.sendall(str(n).encode()); c.close()
else:
    c = socket.create_connection((addr, port), timeout=20)
    c.sendall(bytes(range(256)) * (int(sys.argv[4]) // 256)); c.shutdown(socket.SHUT_WR)
    print(c.recv(100).decode(), flush=True)
"""


def lab(*args, timeout=300):
    return subprocess.run([XPMIP, "lab", *args], capture_output=True, text=True, timeout=timeout)


def sh(*cmd, timeout=60, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def lab_processes():
    """Agents running with the lab's configuration files (by their command lines)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(a.startswith(STATE.encode() + b"/") for a in argv):
            found.append(f"pid {pid}: {b' '.join(argv).decode(errors='replace')}")
    return found


def leftovers():
    """Everything of the lab that exists on this host."""
    left = [f"netns {n}" for n in sh("ip", "netns", "list").stdout.split() if n.startswith("xl-")]
    left += [f"pins {PINS}/{i}" for i in INSTANCES if os.path.exists(f"{PINS}/{i}")]
    left += [f"socket /run/xpmip/{i}.sock" for i in INSTANCES if os.path.exists(f"/run/xpmip/{i}.sock")]
    if os.path.exists(STATE):
        left.append(f"state directory {STATE}")
    return left + lab_processes()


def bindings(config):
    r = sh(XPMIP, "show", "bindings", "-c", config, "--json")
    return {b["mn"]: b for b in json.loads(r.stdout)}


def table_rows(text, title):
    """The rows of the table printed under a line starting with `title`, as dicts by header."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(title))
    head = lines[start + 1].split()
    rows = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        rows.append(dict(zip(head, line.split())))
    return rows


class Capture:
    """tshark on the transit bridge (GRE only); packets() decodes outer and inner addresses."""

    def __init__(self, iface="br0", buffer_mib=2):
        self.iface = iface
        fd, self.path = tempfile.mkstemp(suffix=f"-{iface}.pcap")
        os.close(fd)
        self.proc = subprocess.Popen(["ip", "netns", "exec", "xl-wan", "tshark", "-i", iface, "-f", "ip proto 47",
                                      "-B", str(buffer_mib), "-w", self.path, "-q"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        line = ""
        while "Capturing on" not in line:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"tshark on {iface} did not start")

    def finish(self):
        """Stop capturing (what is in flight gets 0.3 s to arrive)."""
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=20)

    def packets(self):
        self.finish()
        out = sh("tshark", "-r", self.path, "-Y", "gre", "-T", "json", "-e", "ip.src", "-e", "ip.dst", "-e",
                 "ipv6.src", "-e", "ipv6.dst", "-e", "gre.key").stdout
        return [p["_source"]["layers"] for p in json.loads(out or "[]")]

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        os.unlink(self.path)


def refuse_if_a_lab_is_up():
    """The lab's names are fixed: one already up here is an error, not something to remove."""
    left = leftovers()
    if left:
        raise RuntimeError(f"a lab is already up on this host ({left}): `xpmip lab down` first")


class Lab(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        refuse_if_a_lab_is_up()

    def tearDown(self):
        # Whatever a test did, the next one starts from nothing.
        r = lab("down")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(leftovers(), [])

    def assert_nothing_left(self):
        self.assertEqual(leftovers(), [], "the lab left something behind")

    # --- the demo ------------------------------------------------------------------------------

    def test_demo_registers_sends_traffic_prints_tables_and_leaves_nothing(self):
        r = lab("demo", timeout=400)
        out = r.stdout
        self.assertEqual(r.returncode, 0, out + r.stderr)
        self.assertIn("all 4 mobile nodes registered over both WAN links with GRE keys per path", out)
        for ns, (mn_id, realm, cn_ns, cn4, cn6) in MNS.items():
            mn = ns[3:]
            for cn in (cn4, cn6):
                self.assertRegex(out, rf"{mn} -> {cn_ns} {re.escape(cn)} +ping  3/3 rtt")
                self.assertRegex(out, rf"{mn} -> {cn_ns} {re.escape(cn)} +TCP   1024 KiB up \+ 1024 KiB down intact")
            self.assertRegex(out, rf"{mn} -> {cn_ns} {re.escape(cn4)} +TCP80 256 KiB up \+ 256 KiB down intact")
        # The overlap (RFC 5845 Figure 1): 10.0.0.10 in both realms, in both agents' sessions.
        for title, peer in (("LMA sessions", MAG4), ("MAG sessions", LMA4)):   # (PEER: the first path's)
            rows = table_rows(out, title)
            self.assertEqual(len(rows), 4, f"{title}: {rows}")
            self.assertEqual(sorted(r["REALM"] for r in rows if r["HOA"] == "10.0.0.10/32"), ["1", "2"])
            for row in rows:
                self.assertEqual((row["ENCAP"], row["PEER"]), ("gre", peer))
                self.assertNotEqual(row["KEY-UP"], "-")
                self.assertNotEqual(row["KEY-DOWN"], "-")
                self.assertGreater(int(row["UP-PKTS"]), 100, row)     # pings and 2 x 1 MiB each way
                self.assertGreater(int(row["DOWN-PKTS"]), 100, row)
        # RFC 8278: two paths per session, RED (BID 1, label 1) and BLUE (BID 2, label 2), both used.
        for title in ("LMA paths", "MAG paths"):
            rows = table_rows(out, title)
            self.assertEqual(len(rows), 8)
            self.assertEqual(sorted((r["BID"], r["LABEL"]) for r in rows), [("1", "1")] * 4 + [("2", "2")] * 4)
            self.assertTrue(all(r["STATE"] == "up" and int(r["TX-PKTS"]) > 0 and int(r["RX-PKTS"]) > 0 for r in rows),
                            rows)
        # tshark on both transit bridges saw every MN's keys of its binding there (the demo's check).
        for label in ("red", "blue"):
            wire = table_rows(out, f"== GRE on the wire of {label}")
            self.assertEqual([(w["MN"], w["RESULT"]) for w in wire], [(f"mn{i}", "ok") for i in range(1, 5)])
        # How to watch it, with the pinned maps' real paths.
        for cmd in ("bpftool map dump pinned /sys/fs/bpf/xpmip/xl-lma/sessions",
                    "bpftool map dump pinned /sys/fs/bpf/xpmip/xl-mag/tunnel_keys",
                    "ip netns exec xl-wan tshark -i br0 -f 'ip proto 47'", "-e gre.key"):
            self.assertIn(cmd, out)
        self.assertIn("MAG Multipath-Binding option", out)
        self.assertIn("the MAG de-registered all 4 binding(s)", out)
        self.assertIn("down: nothing of the lab is left", out)
        self.assert_nothing_left()

    # --- keys on the wire ------------------------------------------------------------------------

    def test_each_mns_gre_traffic_carries_the_keys_the_bindings_report(self):
        r = lab("up")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        again = lab("up")
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("the lab is already up", again.stderr)
        self.assertIn("xpmip lab down", again.stderr)
        self.assertEqual(lab("status").returncode, 0, "up, then refused: still healthy")

        mag = bindings(f"{STATE}/mag.yaml")
        lma = bindings(f"{STATE}/lma.yaml")
        self.assertEqual(set(mag), {m[0] for m in MNS.values()})
        self.assertEqual(set(lma), set(mag))
        self.assertEqual({mag[m[0]]["hoa"] for m in MNS.values() if m[0].startswith(("mn1", "mn3"))}, {"10.0.0.10"},
                         "mn1 and mn3 share one IPv4 home address in two realms")
        # Ping and TCP to port 7000 are steered onto BLUE (wan1, BID 2): its binding's keys.
        def blue(b):
            return next(p for p in b["paths"] if p["bid"] == 2)
        self.assertEqual(len({blue(b)["key_uplink"] for b in mag.values()}), 4, "uplink keys tell the MNs apart")
        self.assertEqual(len({blue(b)["key_downlink"] for b in mag.values()}), 4, "downlink keys tell the MNs apart")

        for ns, (mn_id, realm, cn_ns, cn4, cn6) in MNS.items():
            m, l = blue(mag[mn_id]), blue(lma[mn_id])
            with self.subTest(mn=mn_id):
                self.assertEqual((mag[mn_id]["state"], lma[mn_id]["state"]), ("registered", "registered"))
                self.assertEqual(lma[mn_id]["realm"], realm)
                self.assertEqual((m["key_uplink"], m["key_downlink"]), (l["key_uplink"], l["key_downlink"]),
                                 "MAG and LMA agree on the keys")
                hoa, hnp = ipaddress.ip_address(mag[mn_id]["hoa"]), ipaddress.ip_network(mag[mn_id]["hnp"])
                cap = Capture("br1")
                try:
                    for cn in (cn4, cn6):
                        p = sh("ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", cn, check=False)
                        self.assertEqual(p.returncode, 0, f"ping {cn} from {ns}: {p.stdout}{p.stderr}")
                        self.tcp(ns, cn_ns, cn)
                    pkts = cap.packets()
                finally:
                    cap.close()
                up = [p for p in pkts if p["ip.src"][0] == MAG4_BLUE and p["ip.dst"][0] == LMA4_BLUE]
                down = [p for p in pkts if p["ip.src"][0] == LMA4_BLUE and p["ip.dst"][0] == MAG4_BLUE]
                self.assertEqual(len(up) + len(down), len(pkts), "GRE between MAG and LMA only")
                self.assertGreater(len(up), 10)
                self.assertGreater(len(down), 10)
                self.assertEqual({int(p["gre.key"][0], 0) for p in up}, {l["key_uplink"]},
                                 f"uplink keys of {mn_id} (MAG -> LMA)")
                self.assertEqual({int(p["gre.key"][0], 0) for p in down}, {m["key_downlink"]},
                                 f"downlink keys of {mn_id} (LMA -> MAG)")
                # ... around this MN's own packets, both families.
                inner4_up = {p["ip.src"][1] for p in up if len(p.get("ip.src", [])) > 1}
                inner6_up = {p["ipv6.src"][0] for p in up if "ipv6.src" in p}
                inner4_down = {p["ip.dst"][1] for p in down if len(p.get("ip.dst", [])) > 1}
                self.assertEqual(inner4_up, {str(hoa)})
                self.assertEqual(inner4_down, {str(hoa)})
                self.assertTrue(inner6_up and all(ipaddress.ip_address(a) in hnp for a in inner6_up), inner6_up)

        first = lab("down")
        self.assertEqual(first.returncode, 0, first.stdout + first.stderr)
        self.assertIn("the MAG de-registered all 4 binding(s)", first.stdout)
        self.assert_nothing_left()
        second = lab("down")
        self.assertEqual(second.returncode, 0, second.stdout + second.stderr)
        self.assertIn("nothing to remove", second.stdout)
        self.assert_nothing_left()

    def tcp(self, mn_ns, cn_ns, cn, size=512 * 1024):
        port = "7000"
        server = subprocess.Popen(["ip", "netns", "exec", cn_ns, PY, "-c", TCP_PEER, "serve", cn, port],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(server.stdout.readline().strip(), "ready", server.stderr.read() if server.poll() else "")
            c = sh("ip", "netns", "exec", mn_ns, PY, "-c", TCP_PEER, "send", cn, port, str(size), check=False)
            self.assertEqual((c.returncode, c.stdout.strip()), (0, str(size)), f"TCP {mn_ns} -> {cn}: {c.stderr}")
            server.wait(timeout=20)
        finally:
            if server.poll() is None:
                server.kill()
            server.wait()
            server.stdout.close()
            server.stderr.close()

    # --- half-built labs --------------------------------------------------------------------------

    def test_status_and_down_handle_a_half_built_lab(self):
        r = lab("up")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(f"{STATE}/lma.pid") as f:
            lma_pid = int(f.read().split()[0])
        os.kill(lma_pid, signal.SIGKILL)   # no chance to unload its data plane
        deadline = time.time() + 5
        while os.path.exists(f"/proc/{lma_pid}") and time.time() < deadline:
            time.sleep(0.05)
        st = lab("status")
        self.assertEqual(st.returncode, 1, st.stdout + st.stderr)
        self.assertRegex(st.stdout, r"LMA +xl-lma +xl-lma +\d+ +not running")
        self.assertIn("not healthy", st.stdout)
        self.assertTrue(os.path.isdir(f"{PINS}/xl-lma"), "a killed LMA leaves its pins")
        refused = lab("up")
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("half-built", refused.stderr)
        d = lab("down")
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)
        self.assertIn("left-over pins /sys/fs/bpf/xpmip/xl-lma removed", d.stdout)
        self.assert_nothing_left()

        # Only a few pieces: stray namespaces and a state directory, no agents.
        sh("ip", "netns", "add", "xl-mn2")
        sh("ip", "netns", "add", "xl-wan")
        os.makedirs(STATE)
        st = lab("status")
        self.assertEqual(st.returncode, 1, st.stdout)
        self.assertIn("namespaces: 2 of 9 present", st.stdout)
        d = lab("down")
        self.assertEqual(d.returncode, 0, d.stdout + d.stderr)
        self.assertIn("namespaces removed: xl-mn2 xl-wan", d.stdout)
        self.assert_nothing_left()

        st = lab("status")
        self.assertEqual(st.returncode, 3)
        self.assertIn("the lab is down", st.stdout)


if __name__ == "__main__":
    XPMIP = os.environ["XPMIP_BIN"]
    unittest.main(verbosity=2)
