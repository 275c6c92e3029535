#!/usr/bin/env python3
"""A scripted mobile node for the access-link tests, run inside an MN namespace (`ip netns exec`).
scapy builds the frames (independently of our C++ code) and parses the answers; the result is
one JSON document on stdout.

  mn_tool.py dhcp IFACE --mac M [--chaddr M] --type discover|request|inform|release|decline
             [--requested A] [--server-id A] [--ciaddr A] [--broadcast] [--bad-udp-checksum]
             [--client-id HEX] [--wait S]
      -> {"replies": [...]}: every DHCP reply for our xid, with its Ethernet/IP/UDP header,
         whether its checksums are right, and its options by scapy's names.
  mn_tool.py rs IFACE --mac M [--hlim N] [--bad-checksum] [--unspecified-source-with-slla]
             [--wait S]
      -> {"ras": [...]}: every Router Advertisement seen, decoded.
  mn_tool.py burst IFACE --mac M [--mac M2 ...] --kinds rs,discover --count N --interval S
      -> {"sent": n, "duration": s}: N rounds of each kind from each MAC, `interval` apart (a flood).
"""
import argparse
import json
import random
import sys
import threading
import time

from scapy.all import AsyncSniffer, conf, sendp  # noqa: E402
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import (ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptMTU, ICMPv6NDOptPrefixInfo,
                                ICMPv6NDOptSrcLLAddr, IPv6)
from scapy.layers.l2 import Ether
from scapy.utils import mac2str

conf.verb = 0

TYPES = {"discover": 1, "request": 3, "decline": 4, "release": 7, "inform": 8}
TYPE_NAMES = {1: "discover", 2: "offer", 3: "request", 4: "decline", 5: "ack", 6: "nak", 7: "release", 8: "inform"}


def link_local(mac):
    b = bytearray(mac2str(mac))
    b[0] ^= 0x02
    eui = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    words = [f"{(eui[i] << 8) | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(words)


def discover_frame(mac, chaddr=None, mtype="discover", requested=None, server_id=None, ciaddr="0.0.0.0",
                   broadcast=False, client_id=None, xid=None):
    opts = [("message-type", TYPES[mtype])]
    if requested:
        opts.append(("requested_addr", requested))
    if server_id:
        opts.append(("server_id", server_id))
    if client_id is not None:
        opts.append(("client_id", client_id))
    opts.append("end")
    src_ip = ciaddr if ciaddr != "0.0.0.0" else "0.0.0.0"
    return (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src=src_ip, dst="255.255.255.255") /
            UDP(sport=68, dport=67) /
            BOOTP(op=1, chaddr=mac2str(chaddr or mac) + b"\0" * 10, xid=xid if xid is not None else random.getrandbits(32),
                  ciaddr=ciaddr, flags=0x8000 if broadcast else 0) /
            DHCP(options=opts))


def rs_frame(mac, hlim=255, bad_checksum=False, unspecified_with_slla=False):
    src = "::" if unspecified_with_slla else link_local(mac)
    rs = ICMPv6ND_RS()
    if bad_checksum:
        rs.cksum = 0x1234
    return (Ether(src=mac, dst="33:33:00:00:00:02") / IPv6(src=src, dst="ff02::2", hlim=hlim) / rs /
            ICMPv6NDOptSrcLLAddr(lladdr=mac))


def checksums_ok(pkt):
    """Rebuild the IP / UDP / ICMPv6 checksums with scapy and compare with what arrived."""
    ok = True
    if IP in pkt:
        c = pkt[IP].copy()
        c.chksum = None
        ok &= IP(bytes(c))[IP].chksum == pkt[IP].chksum
    if UDP in pkt and pkt[UDP].chksum != 0:
        c = pkt[IP].copy() if IP in pkt else None
        if c is not None:
            c[UDP].chksum = None
            ok &= IP(bytes(c))[UDP].chksum == pkt[UDP].chksum
    if ICMPv6ND_RA in pkt:
        c = pkt[IPv6].copy()
        c[ICMPv6ND_RA].cksum = None
        ok &= IPv6(bytes(c))[ICMPv6ND_RA].cksum == pkt[ICMPv6ND_RA].cksum
    return bool(ok)


def jsonable(v):
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    return v


def dhcp_reply(pkt):
    opts = {}
    for o in pkt[DHCP].options:
        if isinstance(o, tuple):
            name, *vals = o
            opts[name] = jsonable(vals[0] if len(vals) == 1 else vals)
    b = pkt[BOOTP]
    return {"eth_src": pkt[Ether].src, "eth_dst": pkt[Ether].dst, "ip_src": pkt[IP].src, "ip_dst": pkt[IP].dst,
            "sport": pkt[UDP].sport, "dport": pkt[UDP].dport, "checksums_ok": checksums_ok(pkt),
            "op": b.op, "xid": b.xid, "flags": int(b.flags), "ciaddr": b.ciaddr, "yiaddr": b.yiaddr,
            "siaddr": b.siaddr, "giaddr": b.giaddr, "chaddr": b.chaddr[:6].hex(), "len": len(bytes(b)),
            "type": TYPE_NAMES.get(opts.get("message-type"), opts.get("message-type")), "options": opts}


def ra_decoded(pkt):
    ra = pkt[ICMPv6ND_RA]
    prefixes = []
    p = ra
    while p:
        if isinstance(p, ICMPv6NDOptPrefixInfo):
            prefixes.append({"prefix": p.prefix, "len": p.prefixlen, "L": p.L, "A": p.A,
                             "valid": p.validlifetime, "preferred": p.preferredlifetime})
        p = p.payload if p.payload else None
    return {"eth_src": pkt[Ether].src, "eth_dst": pkt[Ether].dst, "src": pkt[IPv6].src, "dst": pkt[IPv6].dst,
            "hlim": pkt[IPv6].hlim, "cur_hop_limit": ra.chlim, "M": ra.M, "O": ra.O,
            "router_lifetime": ra.routerlifetime, "checksums_ok": checksums_ok(pkt),
            "slla": pkt[ICMPv6NDOptSrcLLAddr].lladdr if ICMPv6NDOptSrcLLAddr in pkt else None,
            "mtu": pkt[ICMPv6NDOptMTU].mtu if ICMPv6NDOptMTU in pkt else None, "prefixes": prefixes}


def exchange(iface, frames, lfilter, wait):
    started = threading.Event()
    sniffer = AsyncSniffer(iface=iface, lfilter=lfilter, store=True, started_callback=started.set)
    sniffer.start()
    if not started.wait(10):
        raise RuntimeError(f"the sniffer on {iface} did not start")
    sendp(frames, iface=iface)
    time.sleep(wait)
    sniffer.stop()
    return sniffer.results or []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["dhcp", "rs", "burst"])
    ap.add_argument("iface")
    ap.add_argument("--mac", action="append", required=True)
    ap.add_argument("--chaddr")
    ap.add_argument("--type", default="discover", choices=sorted(TYPES))
    ap.add_argument("--requested")
    ap.add_argument("--server-id")
    ap.add_argument("--ciaddr", default="0.0.0.0")
    ap.add_argument("--broadcast", action="store_true")
    ap.add_argument("--bad-udp-checksum", action="store_true")
    ap.add_argument("--client-id")
    ap.add_argument("--hlim", type=int, default=255)
    ap.add_argument("--bad-checksum", action="store_true")
    ap.add_argument("--unspecified-source-with-slla", action="store_true")
    ap.add_argument("--kinds", default="rs")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--wait", type=float, default=1.5)
    a = ap.parse_args()
    mac = a.mac[0]

    if a.cmd == "dhcp":
        xid = random.getrandbits(32)
        f = discover_frame(mac, a.chaddr, a.type, a.requested, a.server_id, a.ciaddr, a.broadcast,
                           bytes.fromhex(a.client_id) if a.client_id else None, xid)
        if a.bad_udp_checksum:
            f = Ether(bytes(f))
            f[UDP].chksum ^= 0x5555
        got = exchange(a.iface, [f], lambda p: UDP in p and p[UDP].sport == 67 and BOOTP in p and p[BOOTP].op == 2 and p[BOOTP].xid == xid, a.wait)
        print(json.dumps({"replies": [dhcp_reply(p) for p in got]}))
    elif a.cmd == "rs":
        f = rs_frame(mac, a.hlim, a.bad_checksum, a.unspecified_source_with_slla)
        got = exchange(a.iface, [f], lambda p: ICMPv6ND_RA in p, a.wait)
        print(json.dumps({"ras": [ra_decoded(p) for p in got]}))
    else:
        frames = []
        for _ in range(a.count):
            for m in a.mac:
                for kind in a.kinds.split(","):
                    frames.append(rs_frame(m) if kind == "rs" else discover_frame(m))
        t0 = time.monotonic()
        sendp(frames, iface=a.iface, inter=a.interval)
        print(json.dumps({"sent": len(frames), "duration": time.monotonic() - t0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
