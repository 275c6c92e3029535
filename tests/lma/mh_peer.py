#!/usr/bin/env python3
"""A scripted peer that runs inside a network namespace and sends what the test process built
with scapy: whole IPv6 packets (IPPROTO_RAW, so scapy's own MH checksum goes on the wire), Mobility
Headers over IPv4/UDP 5436 from a chosen address and port, whole IPv4 packets (tunnelled data);
Ethernet frames (AF_PACKET); and reports what arrives: Mobility Headers on a raw protocol-135 socket (the kernel has verified
their checksum), UDP 5436 replies, and GRE packets (this kernel has no GRE driver, so a raw
protocol-47 socket sees them all).

One JSON request per stdin line, one JSON answer per stdout line. No scapy here: it starts fast."""
import json
import select
import socket
import struct
import sys
import time

IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IP_PKTINFO = 8

mh6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135)
mh6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
raw6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
gre4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
gre6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 47)
udp = {}   # (src, sport) -> socket


def udp_socket(src, sport):
    key = (src, sport)
    if key not in udp:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((src, sport))
        udp[key] = s
    return udp[key]


def read_one(s):
    if s is mh6:
        data, anc, _, addr = s.recvmsg(65535, 256)
        dst = None
        for level, typ, val in anc:
            if level == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO:
                dst = socket.inet_ntop(socket.AF_INET6, val[:16])
        return {"kind": "mh6", "src": addr[0], "dst": dst, "data": data.hex()}
    if s is gre4:
        data, addr = s.recvfrom(65535)
        return {"kind": "gre4", "src": addr[0], "data": data.hex()}
    if s is gre6:
        data, addr = s.recvfrom(65535)
        return {"kind": "gre6", "src": addr[0], "data": data.hex()}
    data, addr = s.recvfrom(65535)
    return {"kind": "udp", "src": addr[0], "sport": addr[1], "to": list(s.getsockname()), "data": data.hex()}


def receive(kinds, timeout, count):
    socks = {"mh6": [mh6], "gre4": [gre4], "gre6": [gre6], "udp": list(udp.values())}
    watch = [s for k in kinds for s in socks[k]]
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select(watch, [], [], left)
        # No more than asked for: what else is ready stays queued for the next request.
        for s in ready[:count - len(got)]:
            got.append(read_one(s))
    return got


def handle(req):
    op = req["op"]
    if op == "send6":
        pkt = bytes.fromhex(req["packet"])
        for _ in range(req.get("count", 1)):   # (a burst, as fast as the socket takes it)
            raw6.sendto(pkt, (socket.inet_ntop(socket.AF_INET6, pkt[24:40]), 0))
        return {"ok": True}
    if op == "send4raw":
        pkt = bytes.fromhex(req["packet"])
        raw4.sendto(pkt, (socket.inet_ntoa(pkt[16:20]), 0))
        return {"ok": True}
    if op == "send_udp":
        s = udp_socket(req["src"], req["sport"])
        s.sendto(bytes.fromhex(req["data"]), (req["dst"], req.get("dport", 5436)))
        return {"ok": True}
    if op == "frame":
        # An Ethernet frame out of an interface (a mobile node showing up on its access link).
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as p:
            p.bind((req["ifname"], 0))
            p.send(bytes.fromhex(req["data"]))
        return {"ok": True}
    if op == "open_udp":
        udp_socket(req["src"], req["sport"])
        return {"ok": True}
    if op == "recv":
        return {"ok": True, "got": receive(req["kinds"], req["timeout"], req.get("count", 1))}
    if op == "drain":
        return {"ok": True, "got": receive(["mh6", "gre4", "gre6", "udp"], 0.05, 1 << 30)}
    return {"ok": False, "error": f"unknown op {op}"}


for line in sys.stdin:
    try:
        answer = handle(json.loads(line))
    except Exception as e:  # report, keep serving
        answer = {"ok": False, "error": repr(e)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
