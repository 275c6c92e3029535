#!/usr/bin/env python3
"""Table-driven BPF_PROG_TEST_RUN vectors for the data plane programs.

Every encapsulation and decapsulation path of the XDP program (and the tc ingress program on a
few of them), at the LMA and at the MAG, in both directions, with crafted input frames and the
exact expected output frames; then malformed input and error cases with their verdict, drop
counter and ICMP reply.

Inputs and expected outputs are built with scapy (an independent encoder) from the rules the
programs implement (RFC 2003, 2473, 2784, 2890, 5213, 5844, 5845, 6040, 792, 1191, 4443), never
from bytes the programs produce. Outputs are compared octet for octet, except two fields that are
not deterministic and are copied from the actual output before comparing: the outer IPv6 flow
label (a flow hash: the test asserts two packets of one flow get the same one) and the outer IPv4
Identification when DF is clear (random, RFC 6864).

One test method per table row (test_<node>_<what>), so a failure names its case.

Run as root with a python3 that has scapy (Debian's /usr/bin/python3); XPMIP_DP names the
xpmip-dp tool (CTest sets it).
"""
import ipaddress
import json
import os
import struct
import subprocess
import sys
import time
import unittest
from dataclasses import dataclass, field
from typing import Callable, Optional, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dptest  # noqa: E402
from dptest import (TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT, XDP_ABORTED, XDP_DROP, XDP_PASS,  # noqa: E402
                    XDP_REDIRECT, XDP_TX, World)

if not dptest.TOOL:
    dptest.TOOL = os.path.join(HERE, "..", "..", "build", "tools", "xpmip-dp")

from scapy.all import (ARP, GRE, ICMP, IP, UDP, Ether, fragment, ICMPv6EchoRequest, ICMPv6ND_RS,  # noqa: E402
                       ICMPv6PacketTooBig, ICMPv6TimeExceeded, IPv6, Raw, raw)

# ------------------------------------------------------------------------------------------------
# Topology
#
#   ns lma: tun0 (tunnel, MTU 1400) core0 (core, realm 1) core1 (core, realm 2) corel2 (core-l2, 1)
#   ns mag: wan0 (tunnel) acc0 (access)
#   ns peer: the other end of every veth (nothing is transmitted: BPF_PROG_TEST_RUN only)

TUN0_MAC, CORE0_MAC, CORE1_MAC = "02:00:00:00:0a:01", "02:00:00:00:c0:01", "02:00:00:00:c1:01"
CORL2_MAC = "02:00:00:00:e2:01"
WAN0_MAC, ACC0_MAC = "02:00:00:00:0b:02", "02:00:00:00:ac:01"
NH0_MAC, NH1_MAC = "02:00:00:00:c0:10", "02:00:00:00:c1:10"   # core next hops (CN side routers)
STATION_MAC = "02:00:00:00:99:01"                              # another station of an L2 segment

TUN_TESTED_MTU = 1400                                          # tun0's MTU: the FIB's too-big case

LMA4, MAG4, NONEIGH4, ROGUE4, OTHER4 = "203.0.113.1", "203.0.113.2", "203.0.113.99", "203.0.113.50", "203.0.113.77"
LMA6, MAG6, ROGUE6 = "2001:db8:f::1", "2001:db8:f::2", "2001:db8:f::50"
CORE0_4, CORE0_6, NH0_4, NH0_6 = "192.0.2.1", "2001:db8:c0::1", "192.0.2.10", "2001:db8:c0::10"
CORE1_4, CORE1_6, NH1_4, NH1_6 = "192.0.3.1", "2001:db8:c1::1", "192.0.3.10", "2001:db8:c1::10"
ACC0_4, ACC0_6 = "10.0.0.1", "2001:db8:acc::1"
CN4, CN6 = "198.51.100.20", "2001:db8:cc::20"   # correspondents, routed via core0 (metric 10) and core1 (20)

IF_MAC = {"core0": CORE0_MAC, "core1": CORE1_MAC}
IF_ADDR = {"core0": (CORE0_4, CORE0_6), "core1": (CORE1_4, CORE1_6), "acc0": (ACC0_4, ACC0_6)}
NH_MAC = {"core0": NH0_MAC, "core1": NH1_MAC}

UDP_DATA_PORT = 5437       # RFC 5844 tunnelled data
UDP_SIGNALING_PORT = 5436  # RFC 5844 signaling: the agent's, not the data plane's
OUTER_TTL = 64
ETH_P_IP, ETH_P_IPV6, ETH_P_TEB = 0x0800, 0x86DD, 0x6558
ICMP_QUOTE_MAX = 512

# Inner traffic classes: DSCP + ECN, copied to the outer (RFC 6040 normal mode).
TOS4 = 0xB9  # DSCP 46 (EF), ECT(1)
TC6 = 0x4A   # DSCP 18 (AF21), ECT(0)
ECN_NOT_ECT, ECN_ECT1, ECN_ECT0, ECN_CE = 0, 1, 2, 3

VERDICT_NAMES = {
    "xdp": {XDP_ABORTED: "XDP_ABORTED", XDP_DROP: "XDP_DROP", XDP_PASS: "XDP_PASS", XDP_TX: "XDP_TX",
            XDP_REDIRECT: "XDP_REDIRECT"},
    "tc-ingress": {TC_ACT_OK: "TC_ACT_OK", TC_ACT_SHOT: "TC_ACT_SHOT", TC_ACT_REDIRECT: "TC_ACT_REDIRECT"},
}


# ------------------------------------------------------------------------------------------------
# Sessions


@dataclass
class Sess:
    sid: int
    name: str
    encap: str              # ipip | udp | gre | udp-tlv-gre
    outer: int              # 4 | 6
    keyed: bool = False
    l2: bool = False
    realm: int = 1
    core: str = "core0"     # the LMA's interface toward the MN's realm
    mtu: int = 0            # path MTU (0: the FIB's)
    hoa: Optional[str] = None
    v6: bool = True         # has an HNP
    lma_remote: Optional[str] = None  # the MAG address the LMA sends to (default MAG4/MAG6)
    lma_local: Optional[str] = None   # the LMA's tunnel address (default LMA4/LMA6)
    lma_port: int = UDP_DATA_PORT     # the MAG's (NAT-mapped) UDP port at the LMA
    at_mag: bool = True
    keys_are_ids: bool = False        # each side's receive key is the session id (the direct index)

    @property
    def mn4(self):
        return self.hoa or f"10.0.{self.sid}.7"

    @property
    def hnp(self):
        return f"2001:db8:a:{self.sid:x}::/64"

    @property
    def mn6(self):
        return f"2001:db8:a:{self.sid:x}::7"

    def mn(self, fam):
        return self.mn4 if fam == 4 else self.mn6

    @property
    def mn_mac(self):
        return f"02:00:00:00:{self.sid:02x}:07"

    @property
    def key_dl(self):  # LMA -> MAG, assigned by the MAG
        return self.sid if self.keys_are_ids else 0xD0D00000 | self.sid

    @property
    def key_ul(self):  # MAG -> LMA, assigned by the LMA
        return self.sid if self.keys_are_ids else 0x0A0B0000 | self.sid

    @property
    def lma_addr(self):
        return self.lma_local or (LMA4 if self.outer == 4 else LMA6)

    @property
    def mag_addr(self):
        return self.lma_remote or (MAG4 if self.outer == 4 else MAG6)

    def _json(self, local, remote, mn_if, port):
        j = {"id": self.sid, "encap": self.encap, "gre_keys": self.keyed, "l2": self.l2, "realm": self.realm,
             "mn_interface": mn_if, "mn_mac": self.mn_mac,
             "paths": [{"local": local, "remote": remote, "bid": 1, "mtu": self.mtu, "remote_port": port,
                        "key_downlink": self.key_dl if self.keyed else 0,
                        "key_uplink": self.key_ul if self.keyed else 0}]}
        if not self.l2:
            j["hoa"] = self.mn4
            if self.v6:
                j["hnp"] = self.hnp
        return j

    def lma_json(self):
        return self._json(self.lma_addr, self.mag_addr, "corel2" if self.l2 else self.core, self.lma_port)

    def mag_json(self):
        return self._json(self.mag_addr, self.lma_addr, "acc0", UDP_DATA_PORT)


S_IPIP4 = Sess(1, "ipip_v4outer", "ipip", 4)
S_IPIP6 = Sess(2, "ipip_v6outer", "ipip", 6)
S_UDP4 = Sess(3, "udp_v4outer", "udp", 4, lma_port=45437)  # the MAG behind a NAT: mapped port
S_GREK4 = Sess(4, "gre_key_v4outer", "gre", 4, keyed=True)
S_GREK6 = Sess(5, "gre_key_v6outer", "gre", 6, keyed=True)
S_GRE4 = Sess(6, "gre_keyless_v4outer", "gre", 4)
S_GRE6 = Sess(7, "gre_keyless_v6outer", "gre", 6)
S_TLV4 = Sess(8, "udp_tlv_gre_key_v4outer", "udp-tlv-gre", 4, keyed=True)
S_L2_4 = Sess(9, "l2_gre_key_v4outer", "gre", 4, keyed=True, l2=True)
S_L2_6 = Sess(10, "l2_gre_key_v6outer", "gre", 6, keyed=True, l2=True)
# RFC 5845 Figure 1: one private IPv4 home address in two realms, told apart by the GRE key.
S_REALM_A = Sess(11, "realm1", "gre", 4, keyed=True, realm=1, core="core0", hoa="10.0.0.7", at_mag=False)
S_REALM_B = Sess(12, "realm2", "gre", 4, keyed=True, realm=2, core="core1", hoa="10.0.0.7", at_mag=False)
S_MTU4 = Sess(20, "mtu_v4outer", "gre", 4, keyed=True, mtu=1400)
S_MTU6 = Sess(21, "mtu_v6outer", "gre", 6, keyed=True, mtu=1400)
S_NONEIGH = Sess(22, "noneigh", "gre", 4, keyed=True, lma_remote=NONEIGH4, at_mag=False)
# A one-armed LMA: the MAG is reached through core0 itself, so the encapsulated packet leaves by
# the interface it came in on (XDP_TX).
ONEARM_MAG4, ONEARM_MAC = "192.0.2.20", "02:00:00:00:c0:20"
S_ONEARM = Sess(23, "one_armed", "gre", 4, keyed=True, lma_local=CORE0_4, lma_remote=ONEARM_MAG4, at_mag=False)
# Keys that are the session's index into the sessions array (what the agents assign): found with
# one array access, no tunnel_keys entry (README "Data plane at scale").
S_DIRECT4 = Sess(24, "gre_key_is_id_v4outer", "gre", 4, keyed=True, keys_are_ids=True)
S_DIRECT6 = Sess(25, "gre_key_is_id_v6outer", "gre", 6, keyed=True, keys_are_ids=True)

L3_SESSIONS = [S_IPIP4, S_IPIP6, S_UDP4, S_GREK4, S_GREK6, S_GRE4, S_GRE6, S_TLV4]
L2_SESSIONS = [S_L2_4, S_L2_6]
ALL_SESSIONS = L3_SESSIONS + L2_SESSIONS + [S_REALM_A, S_REALM_B, S_MTU4, S_MTU6, S_NONEIGH, S_ONEARM, S_DIRECT4,
                                            S_DIRECT6]


# ------------------------------------------------------------------------------------------------
# Packet builders (scapy: the independent encoder)


def inner(fam, src, dst, *, ttl=64, tos=None, df=True, payload=b"xpmip vector", size=None, sport=40000,
          dport=7, ident=0x1234):
    """An inner IPv4/IPv6 UDP packet (bytes). `size`: pad the payload to this total length."""
    if size is not None:
        payload = payload + bytes((i * 7) & 0xFF for i in range(size - 28 - len(payload) if fam == 4 else
                                                                  size - 48 - len(payload)))
    if fam == 4:
        p = IP(src=src, dst=dst, tos=TOS4 if tos is None else tos, ttl=ttl, id=ident,
               flags="DF" if df else 0) / UDP(sport=sport, dport=dport) / Raw(payload)
    else:
        p = IPv6(src=src, dst=dst, tc=TC6 if tos is None else tos, fl=0x5A5A5, hlim=ttl) / \
            UDP(sport=sport, dport=dport) / Raw(payload)
    b = raw(p)
    assert size is None or len(b) == size, (len(b), size)
    return b


def forwarded(ip: bytes, *, ce=False) -> bytes:
    """What a router makes of an IP packet: TTL / hop limit - 1 (IPv4 checksum recomputed);
    with `ce`, the ECN field set to CE (RFC 6040 decapsulation of a CE outer)."""
    if ip[0] >> 4 == 4:
        p = IP(ip)
        p.ttl -= 1
        if ce:
            p.tos |= ECN_CE
        del p.chksum
    else:
        p = IPv6(ip)
        p.hlim -= 1
        if ce:
            p.tc |= ECN_CE
    out = raw(p)
    assert len(out) == len(ip)
    return out


def tos_of(ip: bytes) -> int:
    """IPv4 TOS / IPv6 Traffic Class octet."""
    return ip[1] if ip[0] >> 4 == 4 else ((ip[0] & 0x0F) << 4) | (ip[1] >> 4)


def ethertype_of(ip: bytes) -> int:
    return ETH_P_IP if ip[0] >> 4 == 4 else ETH_P_IPV6


def tunnel(encap, outer, *, src, dst, payload: bytes, ethertype, keyed=False, key=0, tos=0, df=True, ip_id=0,
           fl=0, eth_src, eth_dst, sport=UDP_DATA_PORT, dport=UDP_DATA_PORT, ttl=OUTER_TTL, frag=0, mf=False,
           gre: Optional[bytes] = None, tlv: Optional[bytes] = None, udp_len=None) -> bytes:
    """Ethernet / outer IPv4|IPv6 [/ UDP [/ TLV]] [/ GRE] / payload, per RFC 2003/2473 (ipip),
    RFC 5844 (udp), RFC 2784/2890 (gre), RFC 5845 §7.1 (udp-tlv-gre). `gre`/`tlv` replace the
    GRE/TLV header with given octets (malformed vectors)."""
    if encap == "ipip":
        proto, body = (4 if ethertype == ETH_P_IP else 41), payload
    else:
        if encap in ("gre", "udp-tlv-gre"):
            g = gre if gre is not None else raw(GRE(key_present=int(keyed), key=key if keyed else None,
                                                     proto=ethertype))
            body = g + payload
        else:
            body = payload
        if encap == "gre":
            proto = 47
        else:
            proto = 17
            if encap == "udp-tlv-gre":
                # RFC 5845 §7.1: Type 0 (high nibble) + Res., Next Header 47, Length = octets after it.
                body = (tlv if tlv is not None else struct.pack("!BBH", 0, 47, len(body))) + body
            body = raw(UDP(sport=sport, dport=dport, len=udp_len, chksum=0) / Raw(body))
    if outer == 4:
        ip = IP(src=src, dst=dst, tos=tos, id=ip_id, flags=(2 if df else 0) | (1 if mf else 0), frag=frag, ttl=ttl,
                proto=proto)
    else:
        ip = IPv6(src=src, dst=dst, tc=tos, fl=fl, nh=proto, hlim=ttl)
    return raw(Ether(src=eth_src, dst=eth_dst) / ip / Raw(body))


def eth_ip(eth_src, eth_dst, ip: bytes) -> bytes:
    return raw(Ether(src=eth_src, dst=eth_dst, type=ethertype_of(ip)) / Raw(ip))


def l2_frame(src_mac, dst_mac, kind, variant=0):
    """An Ethernet frame an L2 session carries whole (`variant`: another frame of the flow).
    TOS 0: what an outer header takes from a frame's IP header is not the question here."""
    if kind == "ipv4":
        return raw(Ether(src=src_mac, dst=dst_mac) / IP(src="192.168.7.2", dst="192.168.7.1", tos=0, ttl=64,
                                                        id=7 + variant) /
                   UDP(sport=5000, dport=6000) / Raw(b"bridged frame" + b"+" * variant))
    if kind == "ipv6":
        return raw(Ether(src=src_mac, dst=dst_mac) / IPv6(src="fd00:7::2", dst="fd00:7::1", tc=0, fl=0, hlim=1) /
                   UDP(sport=5000, dport=6000) / Raw(b"bridged frame v6"))
    return raw(Ether(src=src_mac, dst=dst_mac) / ARP(op=2, hwsrc=src_mac, psrc="192.168.7.2", hwdst=dst_mac,
                                                     pdst="192.168.7.1"))


def icmp_error(frame: bytes, kind: str, our_addr: str, mtu=0) -> bytes:
    """The ICMP error a router sends back for `frame` out of the interface it came in on:
    Ethernet addresses swapped, from our_addr to the packet's source, quoting the first
    min(len, 512) octets rounded down to a multiple of 4; IPv4: TOS 0xc0, ID 0, TTL 64,
    "fragmentation needed" (RFC 792/1191) or "time exceeded"; IPv6: hop limit 64, "packet
    too big" (RFC 4443 §3.2) or "time exceeded" (§3.3). scapy computes every checksum."""
    eth = Ether(frame[:14])
    ip = frame[14:]
    if ip[0] >> 4 == 4:
        orig_len, sender = struct.unpack("!H", ip[2:4])[0], str(ipaddress.IPv4Address(ip[12:16]))
    else:
        orig_len, sender = 40 + struct.unpack("!H", ip[4:6])[0], str(ipaddress.IPv6Address(ip[8:24]))
    quote = ip[:min(orig_len, len(ip), ICMP_QUOTE_MAX) & ~3]
    e = Ether(src=eth.dst, dst=eth.src)
    if ip[0] >> 4 == 4:
        msg = ICMP(type=3, code=4, nexthopmtu=mtu) if kind == "too_big" else ICMP(type=11, code=0)
        p = e / IP(src=our_addr, dst=sender, tos=0xC0, id=0, flags=0, ttl=64, proto=1) / msg / Raw(quote)
    else:
        msg = ICMPv6PacketTooBig(mtu=mtu) if kind == "too_big" else ICMPv6TimeExceeded(code=0)
        p = e / IPv6(src=our_addr, dst=sender, tc=0, fl=0, nh=58, hlim=64) / msg / Raw(quote)
    return raw(p)


def _u16(b, off):
    return struct.unpack("!H", b[off:off + 2])[0] if len(b) >= off + 2 else 0


def outer_flow_label(frame: bytes) -> int:
    return struct.unpack("!I", frame[14:18])[0] & 0xFFFFF if len(frame) >= 18 else -1


def encap_expect(s: Sess, *, src, dst, key, payload: bytes, ethertype, tos, df, eth_src, eth_dst,
                 dport=UDP_DATA_PORT):
    """Expected output of an encapsulation, as a function of the actual output: the only fields
    taken from it are the outer IPv6 flow label and the outer IPv4 ID when DF is clear."""
    def build(actual: bytes) -> bytes:
        ip_id = _u16(actual, 18) if (s.outer == 4 and not df) else 0
        fl = outer_flow_label(actual) & 0xFFFFF if s.outer == 6 else 0
        return tunnel(s.encap, s.outer, src=src, dst=dst, payload=payload, ethertype=ethertype, keyed=s.keyed,
                      key=key, tos=tos, df=df, ip_id=ip_id, fl=fl, eth_src=eth_src, eth_dst=eth_dst, dport=dport)
    return build


# ------------------------------------------------------------------------------------------------
# Case table

UNCHANGED = "unchanged"
ANY_DROP = "any one drop counter"   # counters: exactly one drop_* counter, at 1
NOT_FORWARDED = -1                   # verdict: XDP_PASS (output unchanged) or XDP_DROP, counters not checked


@dataclass
class Case:
    name: str
    node: str                 # "lma" | "mag"
    ifname: str
    frame: bytes
    verdict: int              # or NOT_FORWARDED
    expect: Union[None, str, bytes, Callable[[bytes], bytes]] = None   # None: output not compared
    counters: Union[dict, list] = field(default_factory=dict)          # exact nonzero counters (or alternatives)
    hook: str = "xdp"
    twin: Optional["Case"] = None   # second packet of the same flow: same outer flow label
    setup: Optional[Callable] = None    # (test class) -> None
    cleanup: Optional[Callable] = None
    bug: Optional[str] = None       # known data plane bug: the case is an expectedFailure
    doc: str = ""


CASES = []


def add(case: Case):
    assert not any(c.name == case.name for c in CASES), case.name
    CASES.append(case)
    return case


# --- LMA downlink (core -> tun0) and MAG uplink (acc0 -> wan0): encapsulation ---------------------

def lma_core_in(s: Sess, pkt: bytes):
    """`pkt` from a correspondent, arriving on the session's core interface."""
    return eth_ip(NH_MAC[s.core], IF_MAC[s.core], pkt)


def mag_acc_in(s: Sess, pkt: bytes):
    """`pkt` from the session's MN, arriving on acc0."""
    return eth_ip(s.mn_mac, ACC0_MAC, pkt)


def lma_downlink(s: Sess, fam, *, variant=0, **kw):
    cn = CN4 if fam == 4 else CN6
    pkt = inner(fam, cn, s.mn(fam), df=True, payload=b"downlink" + b"!" * variant, ident=0x1234 + variant, **kw)
    frame = lma_core_in(s, pkt)
    exp = encap_expect(s, src=s.lma_addr, dst=s.mag_addr, key=s.key_dl, payload=forwarded(pkt),
                       ethertype=ethertype_of(pkt), tos=tos_of(pkt), df=True,
                       eth_src=TUN0_MAC, eth_dst=WAN0_MAC, dport=s.lma_port)
    return frame, exp


def mag_uplink(s: Sess, fam, *, variant=0, **kw):
    cn = CN4 if fam == 4 else CN6
    # IPv4 without DF: the outer has DF clear and a random ID (RFC 2003 §3.1, RFC 6864).
    pkt = inner(fam, s.mn(fam), cn, df=False, payload=b"uplink" + b"?" * variant, ident=0x4321 + variant, **kw)
    frame = mag_acc_in(s, pkt)
    exp = encap_expect(s, src=s.mag_addr, dst=s.lma_addr, key=s.key_ul, payload=forwarded(pkt),
                       ethertype=ethertype_of(pkt), tos=tos_of(pkt), df=fam == 6,
                       eth_src=WAN0_MAC, eth_dst=TUN0_MAC)
    return frame, exp


# --- LMA uplink (tun0 -> core) and MAG downlink (wan0 -> acc0): decapsulation --------------------

def lma_uplink_in(s: Sess, pkt: bytes, *, outer_tos=None, key=None, src=None, dst=None, **kw):
    return tunnel(s.encap, s.outer, src=src or s.mag_addr, dst=dst or s.lma_addr, payload=pkt,
                  ethertype=kw.pop("ethertype", ethertype_of(pkt)), keyed=s.keyed,
                  key=s.key_ul if key is None else key, tos=tos_of(pkt) if outer_tos is None else outer_tos,
                  eth_src=WAN0_MAC, eth_dst=TUN0_MAC,
                  sport=s.lma_port, **kw)


def mag_downlink_in(s: Sess, pkt: bytes, *, outer_tos=None, key=None, **kw):
    return tunnel(s.encap, s.outer, src=s.lma_addr, dst=s.mag_addr, payload=pkt,
                  ethertype=kw.pop("ethertype", ethertype_of(pkt)), keyed=s.keyed,
                  key=s.key_dl if key is None else key, tos=0 if outer_tos is None else outer_tos,
                  eth_src=TUN0_MAC, eth_dst=WAN0_MAC, **kw)


def lma_uplink(s: Sess, fam, **kw):
    cn = CN4 if fam == 4 else CN6
    pkt = inner(fam, s.mn(fam), cn, df=fam == 4)
    nh = s.core
    return lma_uplink_in(s, pkt, **kw), eth_ip(IF_MAC[nh], NH_MAC[nh], forwarded(pkt))


def mag_downlink(s: Sess, fam, **kw):
    cn = CN4 if fam == 4 else CN6
    pkt = inner(fam, cn, s.mn(fam), df=False)
    return mag_downlink_in(s, pkt, **kw), eth_ip(ACC0_MAC, s.mn_mac, forwarded(pkt))


# --- The matrix: every L3 encapsulation, both nodes, both directions, both inner families -------

for _s in L3_SESSIONS:
    for _fam in (4, 6):
        _f, _e = lma_downlink(_s, _fam)
        _twin = None
        if _s.outer == 6:
            _f2, _e2 = lma_downlink(_s, _fam, variant=1)
            _twin = Case("twin", "lma", _s.core, _f2, XDP_REDIRECT, _e2)
        add(Case(f"lma_downlink_{_s.name}_inner{_fam}", "lma", _s.core, _f, XDP_REDIRECT, _e, twin=_twin,
                 doc="correspondent -> MN on core0: encapsulated toward the MAG with the downlink key"))
        _f, _e = lma_uplink(_s, _fam)
        add(Case(f"lma_uplink_{_s.name}_inner{_fam}", "lma", "tun0", _f, XDP_REDIRECT, _e,
                 doc="MN -> correspondent from the MAG: decapsulated, out of the realm's core interface"))
        _f, _e = mag_uplink(_s, _fam)
        _twin = None
        if _s.outer == 6:
            _f2, _e2 = mag_uplink(_s, _fam, variant=1)
            _twin = Case("twin", "mag", "acc0", _f2, XDP_REDIRECT, _e2)
        add(Case(f"mag_uplink_{_s.name}_inner{_fam}", "mag", "acc0", _f, XDP_REDIRECT, _e, twin=_twin,
                 doc="MN -> correspondent on acc0: encapsulated toward the LMA with the uplink key"))
        _f, _e = mag_downlink(_s, _fam)
        add(Case(f"mag_downlink_{_s.name}_inner{_fam}", "mag", "wan0", _f, XDP_REDIRECT, _e,
                 doc="correspondent -> MN from the LMA: decapsulated, delivered to the MN's MAC"))

# --- L2 sessions (Ethernet in keyed GRE, protocol 0x6558): frames carried whole ------------------

for _s in L2_SESSIONS:
    for _kind in ("ipv4", "arp"):
        # MAG access: a frame from the MN's MAC, to anyone -> encapsulated whole.
        _fr = l2_frame(_s.mn_mac, STATION_MAC, _kind)
        _e = encap_expect(_s, src=_s.mag_addr, dst=_s.lma_addr, key=_s.key_ul, payload=_fr, ethertype=ETH_P_TEB,
                          tos=0, df=True, eth_src=WAN0_MAC, eth_dst=TUN0_MAC)
        _twin = None
        if _s.outer == 6:
            _fr2 = l2_frame(_s.mn_mac, STATION_MAC, _kind, variant=1)
            _twin = Case("twin", "mag", "acc0", _fr2, XDP_REDIRECT,
                         encap_expect(_s, src=_s.mag_addr, dst=_s.lma_addr, key=_s.key_ul, payload=_fr2,
                                      ethertype=ETH_P_TEB, tos=0, df=True, eth_src=WAN0_MAC, eth_dst=TUN0_MAC))
        add(Case(f"mag_uplink_{_s.name}_{_kind}_frame", "mag", "acc0", _fr, XDP_REDIRECT, _e, twin=_twin))
        # MAG tunnel: a frame for the MN -> delivered to acc0 unchanged.
        _fr = l2_frame(STATION_MAC, _s.mn_mac, _kind)
        add(Case(f"mag_downlink_{_s.name}_{_kind}_frame", "mag", "wan0",
                 mag_downlink_in(_s, _fr, ethertype=ETH_P_TEB), XDP_REDIRECT, _fr))
        # LMA L2 core: a frame to the MN's MAC -> encapsulated whole.
        _fr = l2_frame(STATION_MAC, _s.mn_mac, _kind)
        _e = encap_expect(_s, src=_s.lma_addr, dst=_s.mag_addr, key=_s.key_dl, payload=_fr, ethertype=ETH_P_TEB,
                          tos=0, df=True, eth_src=TUN0_MAC, eth_dst=WAN0_MAC)
        _twin = None
        if _s.outer == 6:
            _fr2 = l2_frame(STATION_MAC, _s.mn_mac, _kind, variant=1)
            _twin = Case("twin", "lma", "corel2", _fr2, XDP_REDIRECT,
                         encap_expect(_s, src=_s.lma_addr, dst=_s.mag_addr, key=_s.key_dl, payload=_fr2,
                                      ethertype=ETH_P_TEB, tos=0, df=True, eth_src=TUN0_MAC, eth_dst=WAN0_MAC))
        add(Case(f"lma_downlink_{_s.name}_{_kind}_frame", "lma", "corel2", _fr, XDP_REDIRECT, _e, twin=_twin))
        # LMA tunnel: a frame from the MN -> out of corel2 unchanged.
        _fr = l2_frame(_s.mn_mac, STATION_MAC, _kind)
        add(Case(f"lma_uplink_{_s.name}_{_kind}_frame", "lma", "tun0",
                 lma_uplink_in(_s, _fr, ethertype=ETH_P_TEB, outer_tos=0), XDP_REDIRECT, _fr))

# L2 frames not for a session stay with the stack; frames from another station are not the MN's.
add(Case("lma_corel2_frame_to_unknown_mac_passes", "lma", "corel2",
         l2_frame(STATION_MAC, "02:00:00:00:77:77", "ipv4"), XDP_PASS, UNCHANGED))
add(Case("lma_corel2_broadcast_passes", "lma", "corel2",
         raw(Ether(src=STATION_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.168.7.1", pdst="192.168.7.2")),
         XDP_PASS, UNCHANGED))
add(Case("lma_uplink_l2_frame_from_other_station_is_inner_spoof", "lma", "tun0",
         lma_uplink_in(S_L2_4, l2_frame(STATION_MAC, S_L2_4.mn_mac, "ipv4"), ethertype=ETH_P_TEB, outer_tos=0),
         XDP_DROP, None, {"drop_inner_spoof": 1}))
add(Case("lma_uplink_l2_key_with_ip_protocol_is_encap_mismatch", "lma", "tun0",
         lma_uplink_in(S_L2_4, inner(4, "192.168.7.2", CN4)), XDP_DROP, None, {"drop_encap_mismatch": 1}))

# --- Realms (RFC 5845 Figure 1): 10.0.0.7 in realm 1 (core0) and in realm 2 (core1) --------------

for _s in (S_REALM_A, S_REALM_B):
    _f, _e = lma_downlink(_s, 4)
    add(Case(f"lma_downlink_{_s.name}_same_hoa_uses_own_key", "lma", _s.core, _f, XDP_REDIRECT, _e))
    # CN4's best route is via core0 (metric 10): realm 2's uplink must still leave by core1.
    _f, _e = lma_uplink(_s, 4)
    add(Case(f"lma_uplink_{_s.name}_key_leaves_by_own_core", "lma", "tun0", _f, XDP_REDIRECT, _e))
    _f, _e = lma_downlink(_s, 6)
    add(Case(f"lma_downlink_{_s.name}_inner6_uses_own_key", "lma", _s.core, _f, XDP_REDIRECT, _e))
    _f, _e = lma_uplink(_s, 6)
    add(Case(f"lma_uplink_{_s.name}_inner6_leaves_by_own_core", "lma", "tun0", _f, XDP_REDIRECT, _e))

# A destination reachable only through realm 1's interface: realm 2's packet is dropped (drop_fib)
# rather than leaked into realm 1 (the IPv6 output lookup would hand back core0).
_pkt = inner(6, S_REALM_B.mn(6), "2001:db8:dd::20")
add(Case("lma_uplink_realm2_inner6_no_route_in_own_realm_not_leaked", "lma", "tun0",
         lma_uplink_in(S_REALM_B, _pkt), XDP_DROP, None, {"drop_fib": 1}))

# One-armed LMA: in and out by core0 -> XDP_TX.
_pkt = inner(4, CN4, S_ONEARM.mn4)
add(Case("lma_downlink_one_armed_egress_is_ingress_xdp_tx", "lma", "core0", lma_core_in(S_ONEARM, _pkt), XDP_TX,
         encap_expect(S_ONEARM, src=CORE0_4, dst=ONEARM_MAG4, key=S_ONEARM.key_dl, payload=forwarded(_pkt),
                      ethertype=ETH_P_IP, tos=TOS4, df=True, eth_src=CORE0_MAC, eth_dst=ONEARM_MAC)))

# --- tc ingress: the same plans carried out on an skb --------------------------------------------

for _s, _fam in ((S_GREK4, 4), (S_GREK6, 6), (S_UDP4, 6)):
    _f, _e = lma_downlink(_s, _fam)
    add(Case(f"tc_lma_downlink_{_s.name}_inner{_fam}", "lma", "core0", _f, TC_ACT_REDIRECT, _e,
             {"tc_encap": 1}, hook="tc-ingress"))
for _s, _fam in ((S_GREK4, 6), (S_GREK6, 4), (S_TLV4, 4)):
    _f, _e = lma_uplink(_s, _fam)
    add(Case(f"tc_lma_uplink_{_s.name}_inner{_fam}", "lma", "tun0", _f, TC_ACT_REDIRECT, _e,
             {"tc_decap": 1}, hook="tc-ingress"))
for _kind in ("ipv4", "arp"):
    _fr = l2_frame(STATION_MAC, S_L2_6.mn_mac, _kind)
    _e = encap_expect(S_L2_6, src=LMA6, dst=MAG6, key=S_L2_6.key_dl, payload=_fr, ethertype=ETH_P_TEB, tos=0,
                      df=True, eth_src=TUN0_MAC, eth_dst=WAN0_MAC)
    # A non-IP frame (ARP) of an L2 session too: bpf_skb_adjust_room takes only IP skbs, so tc must
    # use another way to push the headers.
    add(Case(f"tc_lma_downlink_{S_L2_6.name}_{_kind}_frame", "lma", "corel2", _fr, TC_ACT_REDIRECT, _e,
             {"tc_encap": 1}, hook="tc-ingress",))
_fr = l2_frame(S_L2_4.mn_mac, STATION_MAC, "arp")
add(Case("tc_lma_uplink_l2_gre_key_v4outer_arp_frame", "lma", "tun0",
         lma_uplink_in(S_L2_4, _fr, ethertype=ETH_P_TEB, outer_tos=0), TC_ACT_REDIRECT, _fr, {"tc_decap": 1},
         hook="tc-ingress"))
_f, _e = mag_downlink(S_GRE6, 4)
add(Case("tc_mag_downlink_gre_keyless_v6outer_inner4", "mag", "wan0", _f, TC_ACT_REDIRECT, _e, {"tc_decap": 1},
         hook="tc-ingress"))

# --- Decapsulation checks at the LMA (tun0) -------------------------------------------------------

_UP4 = inner(4, S_GREK4.mn4, CN4)            # a valid uplink packet of session 4
_UP6 = inner(6, S_GREK4.mn6, CN6)


def _gre_raw(flags, proto, key=None, extra=b""):
    return struct.pack("!HH", flags, proto) + extra + (struct.pack("!I", key) if key is not None else b"")


def _outer4(proto, body, *, src=MAG4, dst=LMA4, frag=0, mf=False, eth_src=WAN0_MAC, eth_dst=TUN0_MAC):
    ip = IP(src=src, dst=dst, tos=0, id=77, flags="MF" if mf else 0, frag=frag, ttl=64, proto=proto)
    return raw(Ether(src=eth_src, dst=eth_dst) / ip / Raw(body))


add(Case("lma_gre_truncated_base_header", "lma", "tun0", _outer4(47, b"\x20\x00"), XDP_DROP, None,
         {"drop_malformed": 1}, doc="GRE header cut after 2 octets"))
add(Case("lma_gre_truncated_key", "lma", "tun0", _outer4(47, _gre_raw(0x2000, ETH_P_IP)), XDP_DROP, None,
         {"drop_malformed": 1}, doc="K set, the key missing"))
add(Case("lma_gre_unknown_key", "lma", "tun0", lma_uplink_in(S_GREK4, _UP4, key=0x0BAD0BAD), XDP_DROP, None,
         {"drop_unknown_key": 1}))
add(Case("lma_gre_downlink_key_is_unknown_at_lma", "lma", "tun0", lma_uplink_in(S_GREK4, _UP4, key=S_GREK4.key_dl),
         XDP_DROP, None, {"drop_unknown_key": 1}, doc="the LMA receives with uplink keys only (RFC 5845 §3.3)"))
for _ver in (1, 7):
    add(Case(f"lma_gre_version_{_ver}", "lma", "tun0",
             lma_uplink_in(S_GREK4, _UP4, gre=_gre_raw(0x2000 | _ver, ETH_P_IP, S_GREK4.key_ul)), XDP_DROP, None,
             {"drop_gre_header": 1}, doc="RFC 2784 §2.3.1: version must be 0"))
add(Case("lma_gre_routing_bit", "lma", "tun0",
         lma_uplink_in(S_GREK4, _UP4, gre=raw(GRE(routing_present=1, key_present=1, key=S_GREK4.key_ul,
                                                   proto=ETH_P_IP))),
         XDP_DROP, None, {"drop_gre_header": 1}, doc="R bit (RFC 1701 routing) set"))
add(Case("lma_gre_unknown_protocol", "lma", "tun0",
         lma_uplink_in(S_GREK4, _UP4, gre=_gre_raw(0x2000, 0x880B, S_GREK4.key_ul)), XDP_DROP, None,
         {"drop_gre_protocol": 1}, doc="PPP (0x880b) is not carried"))
add(Case("lma_gre_checksum_present_accepted", "lma", "tun0",
         lma_uplink_in(S_GREK4, _UP4, gre=raw(GRE(chksum_present=1, key_present=1, key=S_GREK4.key_ul,
                                                   proto=ETH_P_IP) / Raw(_UP4))[:12]),
         XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_UP4)),
         doc="RFC 2784: C set, checksum (scapy's, correct) + reserved before the key"))
add(Case("lma_gre_sequence_present_accepted", "lma", "tun0",
         lma_uplink_in(S_GREK4, _UP4, gre=raw(GRE(seqnum_present=1, sequence_number=7, key_present=1,
                                                   key=S_GREK4.key_ul, proto=ETH_P_IP))),
         XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_UP4)), doc="RFC 2890: S set, sequence after the key"))
add(Case("lma_outer_ipv4_options_decapsulated", "lma", "tun0",
         raw(Ether(src=WAN0_MAC, dst=TUN0_MAC) / IP(src=MAG4, dst=LMA4, proto=47, options=[b"\x01\x01\x01\x00"]) /
             GRE(key_present=1, key=S_GREK4.key_ul, proto=ETH_P_IP) / Raw(_UP4)),
         XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_UP4)), doc="outer IHL 6 (NOP options)"))
add(Case("lma_outer_fragment_gre", "lma", "tun0",
         _outer4(47, _gre_raw(0x2000, ETH_P_IP, S_GREK4.key_ul) + _UP4[:64], mf=True), XDP_DROP, None,
         {"drop_fragment": 1}, doc="first fragment (MF) of an outer GRE packet"))
add(Case("lma_outer_fragment_ipip", "lma", "tun0", _outer4(4, _UP4, frag=100), XDP_DROP, None,
         {"drop_fragment": 1}, doc="non-first fragment of an outer IPv4-in-IPv4 packet"))
add(Case("lma_outer_fragment_ipv6_in_ipv4", "lma", "tun0", _outer4(41, _UP6, mf=True), XDP_DROP, None,
         {"drop_fragment": 1}))

# UDP 5437: TLV header or IP directly
_TLV_GRE = _gre_raw(0x2000, ETH_P_IP, S_TLV4.key_ul) + inner(4, S_TLV4.mn4, CN4)
add(Case("lma_tlv_next_header_not_gre", "lma", "tun0",
         lma_uplink_in(S_TLV4, inner(4, S_TLV4.mn4, CN4), tlv=struct.pack("!BBH", 0, 4, len(_TLV_GRE))),
         XDP_DROP, None, {"drop_tlv_header": 1}))
for _delta in (+1, -1):
    add(Case(f"lma_tlv_length_{'long' if _delta > 0 else 'short'}_by_1", "lma", "tun0",
             lma_uplink_in(S_TLV4, inner(4, S_TLV4.mn4, CN4),
                           tlv=struct.pack("!BBH", 0, 47, len(_TLV_GRE) + _delta)),
             XDP_DROP, None, {"drop_tlv_length": 1}, doc="RFC 5845 §7.1: MUST discard on a length mismatch"))
add(Case("lma_udp_payload_version_nibble_5", "lma", "tun0",
         _outer4(17, raw(UDP(sport=UDP_DATA_PORT, dport=UDP_DATA_PORT, chksum=0) / Raw(b"\x50" + _UP4[1:]))),
         XDP_DROP, None, {"drop_tlv_header": 1}))
_U = inner(4, S_UDP4.mn4, CN4)
_UDP_GOOD = raw(IP(src=MAG4, dst=LMA4, tos=TOS4, flags="DF", id=0) / UDP(sport=45437, dport=UDP_DATA_PORT) /
                Raw(_U))[20:]
add(Case("lma_udp_nonzero_checksum_accepted", "lma", "tun0", _outer4(17, _UDP_GOOD), XDP_REDIRECT,
         eth_ip(CORE0_MAC, NH0_MAC, forwarded(_U)), doc="a sender may checksum UDP (RFC 768)"))
# A non-zero, wrong UDP checksum is discarded (RFC 1122 §4.1.3.4: "If a UDP datagram is received
# with a checksum that is non-zero and invalid, UDP MUST silently discard the datagram").
add(Case("lma_udp_bad_checksum_dropped", "lma", "tun0",
         _outer4(17, _UDP_GOOD[:6] + bytes([_UDP_GOOD[6] ^ 0x5A]) + _UDP_GOOD[7:]), XDP_DROP, None, ANY_DROP))
add(Case("lma_udp_length_mismatch", "lma", "tun0",
         lma_uplink_in(S_UDP4, inner(4, S_UDP4.mn4, CN4), udp_len=8 + 36), XDP_DROP, None,
         {"drop_malformed": 1}, doc="UDP length != IP payload length"))

# The format must be the session's.
add(Case("lma_plain_gre_for_udp_tlv_gre_session", "lma", "tun0",
         tunnel("gre", 4, src=MAG4, dst=LMA4, payload=inner(4, S_TLV4.mn4, CN4), ethertype=ETH_P_IP, keyed=True,
                key=S_TLV4.key_ul, eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, {"drop_encap_mismatch": 1}))
add(Case("lma_udp_tlv_gre_for_gre_session", "lma", "tun0",
         tunnel("udp-tlv-gre", 4, src=MAG4, dst=LMA4, payload=_UP4, ethertype=ETH_P_IP, keyed=True,
                key=S_GREK4.key_ul, eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, {"drop_encap_mismatch": 1}))
add(Case("lma_keyless_gre_for_keyed_session", "lma", "tun0",
         tunnel("gre", 4, src=MAG4, dst=LMA4, payload=_UP4, ethertype=ETH_P_IP, keyed=False,
                eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, {"drop_no_session": 1}))
add(Case("lma_ipip_for_gre_session", "lma", "tun0",
         tunnel("ipip", 4, src=MAG4, dst=LMA4, payload=inner(4, S_GRE4.mn4, CN4), ethertype=ETH_P_IP,
                eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, [{"drop_encap_mismatch": 1}, {"drop_no_session": 1}]))
add(Case("lma_udp_for_ipip_session", "lma", "tun0",
         tunnel("udp", 4, src=MAG4, dst=LMA4, payload=inner(4, S_IPIP4.mn4, CN4), ethertype=ETH_P_IP,
                eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, [{"drop_encap_mismatch": 1}, {"drop_no_session": 1}]))
add(Case("lma_keyed_gre_for_keyless_session_is_unknown_key", "lma", "tun0",
         tunnel("gre", 4, src=MAG4, dst=LMA4, payload=inner(4, S_GRE4.mn4, CN4), ethertype=ETH_P_IP, keyed=True,
                key=0x0A0B0000 | S_GRE4.sid, eth_src=WAN0_MAC, eth_dst=TUN0_MAC),
         XDP_DROP, None, {"drop_unknown_key": 1}))
add(Case("lma_keyless_no_session", "lma", "tun0",
         lma_uplink_in(S_IPIP4, inner(4, "10.0.99.7", CN4)), XDP_DROP, None, {"drop_no_session": 1}))
add(Case("lma_keyless_from_other_mag_no_session", "lma", "tun0",
         lma_uplink_in(S_IPIP4, inner(4, S_IPIP4.mn4, CN4), src=ROGUE4), XDP_DROP, None, {"drop_no_session": 1},
         doc="key-less sessions are found by (outer source, inner source)"))

# Spoofing
add(Case("lma_outer_source_spoof", "lma", "tun0", lma_uplink_in(S_GREK4, _UP4, src=ROGUE4), XDP_DROP, None,
         {"drop_outer_spoof": 1}))
add(Case("lma_outer_destination_not_local", "lma", "tun0", lma_uplink_in(S_GREK4, _UP4, dst=OTHER4), XDP_DROP,
         None, {"drop_outer_spoof": 1}))
add(Case("lma_outer_source_spoof_v6", "lma", "tun0", lma_uplink_in(S_GREK6, inner(6, S_GREK6.mn6, CN6), src=ROGUE6),
         XDP_DROP, None, {"drop_outer_spoof": 1}))
add(Case("lma_inner_source_spoof_v4", "lma", "tun0", lma_uplink_in(S_GREK4, inner(4, "10.0.4.8", CN4)),
         XDP_DROP, None, {"drop_inner_spoof": 1}))
add(Case("lma_inner_source_spoof_v6", "lma", "tun0", lma_uplink_in(S_GREK4, inner(6, "2001:db8:bad::7", CN6)),
         XDP_DROP, None, {"drop_inner_spoof": 1}))
add(Case("lma_inner_source_of_other_session", "lma", "tun0", lma_uplink_in(S_GREK4, inner(4, S_GREK6.mn4, CN4)),
         XDP_DROP, None, {"drop_inner_spoof": 1}))

# RFC 6040 §4.2 decapsulation (Figure 4)
_NOT_ECT4 = inner(4, S_GREK4.mn4, CN4, tos=0x28 | ECN_NOT_ECT)
_ECT0_4 = inner(4, S_GREK4.mn4, CN4, tos=0x28 | ECN_ECT0)
_ECT0_6 = inner(6, S_GREK4.mn6, CN6, tos=0x28 | ECN_ECT0)
_CE_4 = inner(4, S_GREK4.mn4, CN4, tos=0x28 | ECN_CE)
add(Case("lma_ecn_ce_outer_not_ect_inner_dropped", "lma", "tun0",
         lma_uplink_in(S_GREK4, _NOT_ECT4, outer_tos=0x28 | ECN_CE), XDP_DROP, None, {"drop_ecn": 1}))
add(Case("lma_ecn_ce_outer_ect0_inner4_becomes_ce", "lma", "tun0",
         lma_uplink_in(S_GREK4, _ECT0_4, outer_tos=0x28 | ECN_CE), XDP_REDIRECT,
         eth_ip(CORE0_MAC, NH0_MAC, forwarded(_ECT0_4, ce=True))))
add(Case("lma_ecn_ce_outer_ect0_inner6_becomes_ce", "lma", "tun0",
         lma_uplink_in(S_GREK4, _ECT0_6, outer_tos=0x28 | ECN_CE), XDP_REDIRECT,
         eth_ip(CORE0_MAC, NH0_MAC, forwarded(_ECT0_6, ce=True))))
add(Case("lma_ecn_ce_outer_ce_inner_unchanged", "lma", "tun0",
         lma_uplink_in(S_GREK4, _CE_4, outer_tos=ECN_CE), XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_CE_4))))
add(Case("lma_ecn_ect0_outer_not_ect_inner_forwarded_not_ect", "lma", "tun0",
         lma_uplink_in(S_GREK4, _NOT_ECT4, outer_tos=ECN_ECT0), XDP_REDIRECT,
         eth_ip(CORE0_MAC, NH0_MAC, forwarded(_NOT_ECT4))))
_ECT1_OUT = IP(forwarded(_ECT0_4))
_ECT1_OUT.tos = (_ECT1_OUT.tos & ~3) | ECN_ECT1
del _ECT1_OUT.chksum
_ECT1_OUT = raw(_ECT1_OUT)
# RFC 6040 §4.2 Figure 4: an ECT(1) outer over an ECT(0) inner leaves as ECT(1).
add(Case("lma_ecn_ect1_outer_ect0_inner_becomes_ect1", "lma", "tun0",
         lma_uplink_in(S_GREK4, _ECT0_4, outer_tos=0x28 | ECN_ECT1), XDP_REDIRECT,
         eth_ip(CORE0_MAC, NH0_MAC, _ECT1_OUT)))

add(Case("lma_decap_inner_ttl_1_dropped", "lma", "tun0",
         lma_uplink_in(S_GREK4, inner(4, S_GREK4.mn4, CN4, ttl=1)), XDP_DROP, None, {"drop_ttl": 1}))
add(Case("lma_decap_inner_hop_limit_1_dropped", "lma", "tun0",
         lma_uplink_in(S_GREK4, inner(6, S_GREK4.mn6, CN6, ttl=1)), XDP_DROP, None, {"drop_ttl": 1}))

# Not ours on a tunnel interface: to the stack, unchanged.
add(Case("lma_tun0_signaling_udp_5436_passes", "lma", "tun0",
         raw(Ether(src=WAN0_MAC, dst=TUN0_MAC) / IP(src=MAG4, dst=LMA4) /
             UDP(sport=UDP_SIGNALING_PORT, dport=UDP_SIGNALING_PORT) / Raw(b"\x3b\x01\x05\x00" + b"\0" * 12)),
         XDP_PASS, UNCHANGED))
add(Case("lma_tun0_arp_passes", "lma", "tun0",
         raw(Ether(src=WAN0_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=WAN0_MAC, psrc=MAG4, pdst=LMA4)),
         XDP_PASS, UNCHANGED))
add(Case("lma_tun0_icmpv6_echo_passes", "lma", "tun0",
         raw(Ether(src=WAN0_MAC, dst=TUN0_MAC) / IPv6(src=MAG6, dst=LMA6) / ICMPv6EchoRequest(id=1, seq=1)),
         XDP_PASS, UNCHANGED))

# RFC 1624 edge cases of the incremental IPv4 checksum update (TTL - 1, CE).


def _ipv4_checksum(h: bytes) -> int:
    total = sum(struct.unpack("!10H", h[:20]))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def inner4_with_checksum(src, dst, want, *, after_forwarding, tos=None):
    """An inner IPv4 packet whose header checksum is `want`, before or after forwarding."""
    base = bytearray(inner(4, src, dst, ident=0, tos=tos))
    for ident in range(65536):
        base[4:6] = struct.pack("!H", ident)
        h = bytearray(base[:20])
        h[8] -= after_forwarding
        h[10:12] = b"\0\0"
        if _ipv4_checksum(h) == want:
            pkt = inner(4, src, dst, ident=ident, tos=tos)
            assert _u16(forwarded(pkt) if after_forwarding else pkt, 10) == want
            return pkt
    raise AssertionError("no such identification")


for _when in (0, 1):
    _pkt = inner4_with_checksum(S_GREK4.mn4, CN4, 0x0000, after_forwarding=_when)
    add(Case(f"lma_uplink_inner_checksum_{'becomes' if _when else 'was'}_0000", "lma", "tun0",
             lma_uplink_in(S_GREK4, _pkt), XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_pkt))))
    _pkt = inner4_with_checksum(CN4, S_GREK6.mn4, 0x0000, after_forwarding=_when)
    add(Case(f"lma_downlink_inner_checksum_{'becomes' if _when else 'was'}_0000", "lma", "core0",
             lma_core_in(S_GREK6, _pkt), XDP_REDIRECT,
             encap_expect(S_GREK6, src=LMA6, dst=MAG6, key=S_GREK6.key_dl, payload=forwarded(_pkt),
                          ethertype=ETH_P_IP, tos=TOS4, df=True, eth_src=TUN0_MAC, eth_dst=WAN0_MAC)))

# --- Decapsulation checks at the MAG (wan0) -------------------------------------------------------

add(Case("mag_inner_destination_not_mn", "mag", "wan0", mag_downlink_in(S_GREK4, inner(4, CN4, "10.0.4.99")),
         XDP_DROP, None, {"drop_inner_spoof": 1}))
add(Case("mag_inner_destination_not_mn_v6", "mag", "wan0",
         mag_downlink_in(S_GREK4, inner(6, CN6, "2001:db8:a:5::7")), XDP_DROP, None, {"drop_inner_spoof": 1}))
add(Case("mag_gre_unknown_key", "mag", "wan0", mag_downlink_in(S_GREK4, inner(4, CN4, S_GREK4.mn4), key=0x0BAD),
         XDP_DROP, None, {"drop_unknown_key": 1}))
add(Case("mag_uplink_key_is_unknown_at_mag", "mag", "wan0",
         mag_downlink_in(S_GREK4, inner(4, CN4, S_GREK4.mn4), key=S_GREK4.key_ul), XDP_DROP, None,
         {"drop_unknown_key": 1}))
add(Case("mag_decap_inner_ttl_1_dropped", "mag", "wan0", mag_downlink_in(S_GREK6, inner(4, CN4, S_GREK6.mn4, ttl=1)),
         XDP_DROP, None, {"drop_ttl": 1}))
add(Case("mag_keyless_no_session", "mag", "wan0", mag_downlink_in(S_GRE6, inner(6, CN6, "2001:db8:a:99::7")),
         XDP_DROP, None, {"drop_no_session": 1}))
_M = inner(6, CN6, S_GRE6.mn6, tos=0x28 | ECN_ECT0)
add(Case("mag_ecn_ce_outer_ect0_inner6_becomes_ce", "mag", "wan0", mag_downlink_in(S_GRE6, _M, outer_tos=ECN_CE),
         XDP_REDIRECT, eth_ip(ACC0_MAC, S_GRE6.mn_mac, forwarded(_M, ce=True))))
add(Case("mag_l2_frame_for_other_station_is_inner_spoof", "mag", "wan0",
         mag_downlink_in(S_L2_4, l2_frame(STATION_MAC, "02:00:00:00:77:77", "ipv4"), ethertype=ETH_P_TEB),
         XDP_DROP, None, {"drop_inner_spoof": 1}))
_BCAST = raw(Ether(src=STATION_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=STATION_MAC, psrc="192.168.7.1",
                                                                   pdst="192.168.7.2"))
add(Case("mag_l2_broadcast_frame_delivered", "mag", "wan0", mag_downlink_in(S_L2_6, _BCAST, ethertype=ETH_P_TEB),
         XDP_REDIRECT, _BCAST))

# --- Encapsulation-side errors (LMA core0, MAG acc0) -----------------------------------------------


def _too_big_cases(s: Sess, where: str):
    """A 1400-octet packet on a path of MTU 1400: too big once encapsulated."""
    overhead = (20 if s.outer == 4 else 40) + 8   # outer IP + keyed GRE
    ingress = "core0" if where == "lma" else "acc0"
    build = lma_core_in if where == "lma" else mag_acc_in
    src, dst = ((CN4, CN6), (s.mn4, s.mn6)) if where == "lma" else ((s.mn4, s.mn6), (CN4, CN6))
    v4 = build(s, inner(4, src[0], dst[0], df=True, size=1400))
    v6 = build(s, inner(6, src[1], dst[1], size=1400))
    nodf = build(s, inner(4, src[0], dst[0], df=False, size=1400))
    add(Case(f"{where}_too_big_{s.name}_inner4_df_icmp_frag_needed", where, ingress, v4, XDP_TX,
             icmp_error(v4, "too_big", IF_ADDR[ingress][0], mtu=s.mtu - overhead),
             {"drop_too_big": 1, "icmp_sent": 1}))
    add(Case(f"{where}_too_big_{s.name}_inner6_packet_too_big", where, ingress, v6, XDP_TX,
             icmp_error(v6, "too_big", IF_ADDR[ingress][1], mtu=s.mtu - overhead),
             {"drop_too_big": 1, "icmp_sent": 1}))
    add(Case(f"{where}_too_big_{s.name}_inner4_no_df_dropped", where, ingress, nodf, XDP_DROP, None,
             {"drop_too_big_no_df": 1}))
    # Exactly the path MTU once encapsulated: fits.
    ok = inner(6, src[1], dst[1], size=s.mtu - overhead)
    _f = build(s, ok)
    _e = encap_expect(s, src=s.lma_addr if where == "lma" else s.mag_addr,
                      dst=s.mag_addr if where == "lma" else s.lma_addr,
                      key=s.key_dl if where == "lma" else s.key_ul, payload=forwarded(ok), ethertype=ETH_P_IPV6,
                      tos=TC6, df=True, eth_src=TUN0_MAC if where == "lma" else WAN0_MAC,
                      eth_dst=WAN0_MAC if where == "lma" else TUN0_MAC)
    add(Case(f"{where}_fits_{s.name}_exactly_path_mtu", where, ingress, _f, XDP_REDIRECT, _e))


_too_big_cases(S_MTU4, "lma")
_too_big_cases(S_MTU6, "lma")
_too_big_cases(S_MTU4, "mag")

# The FIB's MTU (tun0 has 1400): session 4 has no path MTU of its own.
_P = lma_core_in(S_GREK4, inner(6, CN6, S_GREK4.mn6, size=TUN_TESTED_MTU))
add(Case("lma_too_big_fib_mtu_inner6_packet_too_big", "lma", "core0", _P, XDP_TX,
         icmp_error(_P, "too_big", CORE0_6, mtu=TUN_TESTED_MTU - 28), {"drop_too_big": 1, "icmp_sent": 1}))
_P = lma_core_in(S_GREK4, inner(4, CN4, S_GREK4.mn4, size=TUN_TESTED_MTU, df=True))
add(Case("lma_too_big_fib_mtu_inner4_df_icmp_frag_needed", "lma", "core0", _P, XDP_TX,
         icmp_error(_P, "too_big", CORE0_4, mtu=TUN_TESTED_MTU - 28), {"drop_too_big": 1, "icmp_sent": 1}))

# TTL expiring on encapsulation: ICMP time exceeded (odd lengths: the quote is rounded down).
for _where, _if, _s in (("lma", "core0", S_GREK4), ("mag", "acc0", S_GREK6)):
    _b = lma_core_in if _where == "lma" else mag_acc_in
    _src4, _dst4 = (CN4, _s.mn4) if _where == "lma" else (_s.mn4, CN4)
    _src6, _dst6 = (CN6, _s.mn6) if _where == "lma" else (_s.mn6, CN6)
    for _ttl in (1, 0):
        _P = _b(_s, inner(4, _src4, _dst4, ttl=_ttl, payload=b"ttl expired!!!!"))   # 43 octets
        add(Case(f"{_where}_encap_ttl_{_ttl}_icmp_time_exceeded", _where, _if, _P, XDP_TX,
                 icmp_error(_P, "ttl", IF_ADDR[_if][0]), {"drop_ttl": 1, "icmp_sent": 1}))
    _P = _b(_s, inner(6, _src6, _dst6, ttl=1, payload=b"hop limit expired"))   # 65 octets
    add(Case(f"{_where}_encap_hop_limit_1_icmpv6_time_exceeded", _where, _if, _P, XDP_TX,
             icmp_error(_P, "ttl", IF_ADDR[_if][1]), {"drop_ttl": 1, "icmp_sent": 1}))
_P = lma_core_in(S_GREK4, raw(IP(src=CN4, dst=S_GREK4.mn4, ttl=1, id=9) / ICMP(type=8, id=1, seq=1) / Raw(b"ping")))
add(Case("lma_encap_ttl_1_echo_request_icmp_time_exceeded", "lma", "core0", _P, XDP_TX,
         icmp_error(_P, "ttl", CORE0_4), {"drop_ttl": 1, "icmp_sent": 1}, doc="ICMP queries do get errors"))
_P = lma_core_in(S_GREK4, raw(IP(src=CN4, dst=S_GREK4.mn4, ttl=1, id=10) / ICMP(type=3, code=1) /
                              Raw(raw(IP(src=S_GREK4.mn4, dst="192.0.2.99", id=5) / UDP(sport=1, dport=2)))))
# No ICMP error about an ICMP error message (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7: MUST NOT).
add(Case("lma_encap_ttl_1_icmp_error_gets_no_icmp", "lma", "core0", _P, XDP_DROP, None, {"drop_ttl": 1}))
_P = lma_core_in(S_GREK4, raw(IPv6(src=CN6, dst=S_GREK4.mn6, hlim=1) / ICMPv6TimeExceeded() /
                              Raw(raw(IPv6(src=S_GREK4.mn6, dst="2001:db8:99::1", hlim=0) / UDP(sport=1, dport=2)))))
# No ICMPv6 error about an ICMPv6 error message (RFC 4443 §2.4 (e.1): MUST NOT).
add(Case("lma_encap_hop_limit_1_icmpv6_error_gets_no_icmp", "lma", "core0", _P, XDP_DROP, None, {"drop_ttl": 1}))
_P = mag_acc_in(S_GREK6, raw(IP(src=S_GREK6.mn4, dst=CN4, ttl=1, id=11, frag=185, proto=17) / Raw(b"z" * 40)))
# No ICMP error about a non-initial fragment (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7: MUST NOT).
add(Case("mag_encap_ttl_1_non_initial_fragment_gets_no_icmp", "mag", "acc0", _P, XDP_DROP, None, {"drop_ttl": 1}))

_P = lma_core_in(S_GREK4, inner(6, CN6, S_GREK4.mn6, ttl=1, size=900))
add(Case("lma_encap_hop_limit_1_long_packet_quote_512", "lma", "core0", _P, XDP_TX,
         icmp_error(_P, "ttl", CORE0_6), {"drop_ttl": 1, "icmp_sent": 1}))


def _path(node, sid, up):
    return lambda t: getattr(t, node).set_path(sid, 1, up)


_f, _ = lma_downlink(S_GREK4, 4)
add(Case("lma_all_paths_down_drop_no_path", "lma", "core0", _f, XDP_DROP, None, {"drop_no_path": 1},
         setup=_path("lma", S_GREK4.sid, False), cleanup=_path("lma", S_GREK4.sid, True)))
_f, _ = mag_uplink(S_GREK4, 6)
add(Case("mag_all_paths_down_drop_no_path", "mag", "acc0", _f, XDP_DROP, None, {"drop_no_path": 1},
         setup=_path("mag", S_GREK4.sid, False), cleanup=_path("mag", S_GREK4.sid, True)))
_f, _ = lma_downlink(S_NONEIGH, 4)
add(Case("lma_next_hop_without_neighbour_passes", "lma", "core0", _f, XDP_PASS, UNCHANGED, {"pass_no_neigh": 1}))
_f, _ = lma_downlink(S_NONEIGH, 6)
add(Case("lma_next_hop_without_neighbour_passes_inner6", "lma", "core0", _f, XDP_PASS, UNCHANGED,
         {"pass_no_neigh": 1}))

# Not ours on a core interface.
add(Case("lma_core0_to_unknown_address_passes", "lma", "core0", lma_core_in(S_GREK4, inner(4, CN4, "10.0.99.99")),
         XDP_PASS, UNCHANGED))
add(Case("lma_core0_to_unknown_prefix_passes", "lma", "core0",
         lma_core_in(S_GREK4, inner(6, CN6, "2001:db8:b::1")), XDP_PASS, UNCHANGED))
add(Case("lma_core0_arp_passes", "lma", "core0",
         raw(Ether(src=NH0_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=NH0_MAC, psrc=NH0_4, pdst=CORE0_4)),
         XDP_PASS, UNCHANGED))
# A router MUST NOT forward a packet it received as a link-layer broadcast (or multicast) unless it
# is directed to an IP multicast address (RFC 1812 §5.3.4).
add(Case("lma_core0_link_layer_broadcast_not_forwarded", "lma", "core0",
         eth_ip(NH0_MAC, "ff:ff:ff:ff:ff:ff", inner(4, CN4, S_GREK4.mn4)), NOT_FORWARDED, UNCHANGED))
add(Case("lma_core1_realm2_address_of_realm1_only_passes", "lma", "core1",
         lma_core_in(S_REALM_B, inner(4, CN4, S_GREK4.mn4)), XDP_PASS, UNCHANGED,
         doc="10.0.4.7 is a realm-1 home address: nothing in realm 2"))

# --- MAG access side (acc0) -----------------------------------------------------------------------

add(Case("mag_mn_source_spoof_v4", "mag", "acc0", mag_acc_in(S_GREK4, inner(4, "10.0.4.8", CN4)), XDP_DROP, None,
         {"drop_inner_spoof": 1}, doc="RFC 5213 §6.10.3: the MN sends from its HoA only"))
add(Case("mag_mn_source_spoof_v6", "mag", "acc0", mag_acc_in(S_GREK4, inner(6, "2001:db8:a:5::7", CN6)), XDP_DROP,
         None, {"drop_inner_spoof": 1}, doc="another MN's prefix"))
add(Case("mag_mn_arp_passes", "mag", "acc0",
         raw(Ether(src=S_GREK4.mn_mac, dst="ff:ff:ff:ff:ff:ff") / ARP(hwsrc=S_GREK4.mn_mac, psrc=S_GREK4.mn4,
                                                                      pdst=ACC0_4)), XDP_PASS, UNCHANGED))
add(Case("mag_mn_router_solicitation_passes", "mag", "acc0",
         raw(Ether(src=S_GREK4.mn_mac, dst="33:33:00:00:00:02") / IPv6(src="fe80::4:7", dst="ff02::2", hlim=255) /
             ICMPv6ND_RS()), XDP_PASS, UNCHANGED))
add(Case("mag_mn_to_its_mag_passes", "mag", "acc0", mag_acc_in(S_GREK4, inner(4, S_GREK4.mn4, ACC0_4)), XDP_PASS,
         UNCHANGED))
add(Case("mag_mn_frame_to_other_mac_passes", "mag", "acc0",
         eth_ip(S_GREK4.mn_mac, STATION_MAC, inner(4, S_GREK4.mn4, CN4)), XDP_PASS, UNCHANGED))
add(Case("mag_mn_link_layer_broadcast_not_forwarded", "mag", "acc0",
         eth_ip(S_GREK4.mn_mac, "ff:ff:ff:ff:ff:ff", inner(4, S_GREK4.mn4, CN4)), NOT_FORWARDED, UNCHANGED,
         doc="RFC 1812 §5.3.4"))
add(Case("mag_unknown_station_passes_and_is_reported", "mag", "acc0",
         eth_ip("02:00:00:00:66:66", ACC0_MAC, inner(4, "10.0.66.7", CN4)), XDP_PASS, UNCHANGED,
         {"unknown_station": 1}))


# ------------------------------------------------------------------------------------------------
# The test class


def _hexdiff(exp: bytes, act: bytes) -> str:
    rows = []
    for off in range(0, max(len(exp), len(act)), 16):
        e, a = exp[off:off + 16], act[off:off + 16]
        mark = "  " if e == a else "**"
        rows.append(f"{mark} {off:04x}  {e.hex(' '):<47}  |  {a.hex(' ')}")
    return "\n".join(rows)


def _show(b: bytes) -> str:
    try:
        return Ether(b).show2(dump=True)
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"(scapy cannot decode: {e})"


# --- Keys that are the session index: one lookup, both directions, both roles ----------------------

for _s in (S_DIRECT4, S_DIRECT6):
    for _fam in (4, 6):
        _f, _e = lma_uplink(_s, _fam)
        add(Case(f"lma_uplink_{_s.name}_inner{_fam}", "lma", "tun0", _f, XDP_REDIRECT, _e))
        _f, _e = mag_downlink(_s, _fam)
        add(Case(f"mag_downlink_{_s.name}_inner{_fam}", "mag", "wan0", _f, XDP_REDIRECT, _e))
        _f, _e = lma_downlink(_s, _fam)
        add(Case(f"lma_downlink_{_s.name}_inner{_fam}", "lma", "core0", _f, XDP_REDIRECT, _e))
        _f, _e = mag_uplink(_s, _fam)
        add(Case(f"mag_uplink_{_s.name}_inner{_fam}", "mag", "acc0", _f, XDP_REDIRECT, _e))
add(Case("lma_key_is_another_sessions_id_but_not_its_key", "lma", "tun0",
         lma_uplink_in(S_GREK4, _UP4, key=S_GREK4.sid), XDP_DROP, None, {"drop_unknown_key": 1},
         doc="session 4's uplink key is 0x0a0b0004, not its index: key 4 names no session"))
add(Case("lma_direct_key_from_the_wrong_mag_is_outer_spoof", "lma", "tun0",
         lma_uplink_in(S_DIRECT4, inner(4, S_DIRECT4.mn4, CN4), src=ROGUE4), XDP_DROP, None,
         {"drop_outer_spoof": 1}))

# --- Router hygiene (RFC 1812): what kernel routing would not forward either ------------------------


def _bad_ipv4_checksum(pkt: bytes) -> bytes:
    b = bytearray(pkt)
    b[10] ^= 0x5A
    return bytes(b)


add(Case("mag_uplink_inner_ipv4_bad_header_checksum", "mag", "acc0",
         mag_acc_in(S_GREK4, _bad_ipv4_checksum(inner(4, S_GREK4.mn4, CN4))), XDP_DROP, None,
         {"drop_ip_checksum": 1}, doc="RFC 1812 §5.2.2: a router verifies the IPv4 header checksum"))
add(Case("lma_uplink_inner_ipv4_bad_header_checksum", "lma", "tun0",
         lma_uplink_in(S_GREK4, _bad_ipv4_checksum(inner(4, S_GREK4.mn4, CN4))), XDP_DROP, None,
         {"drop_ip_checksum": 1}))
add(Case("lma_downlink_ipv4_bad_header_checksum", "lma", "core0",
         lma_core_in(S_GREK4, _bad_ipv4_checksum(inner(4, CN4, S_GREK4.mn4))), XDP_DROP, None,
         {"drop_ip_checksum": 1}))
_f = bytearray(lma_uplink_in(S_GREK4, inner(4, S_GREK4.mn4, CN4)))
_f[14 + 10] ^= 0x5A
add(Case("lma_uplink_outer_ipv4_bad_header_checksum", "lma", "tun0", bytes(_f), XDP_DROP, None,
         {"drop_ip_checksum": 1}, doc="the outer header is checked before anything is decapsulated"))
for _dst in ("127.0.0.1", "0.1.2.3", "240.0.0.1"):
    add(Case(f"mag_uplink_to_{_dst.replace('.', '_')}_not_forwarded", "mag", "acc0",
             mag_acc_in(S_GREK4, inner(4, S_GREK4.mn4, _dst)), XDP_DROP, None, {"drop_not_forwardable": 1},
             doc="RFC 1812 §5.3.7: martian destinations"))
add(Case("mag_uplink_to_ipv6_loopback_not_forwarded", "mag", "acc0",
         mag_acc_in(S_GREK6, inner(6, S_GREK6.mn6, "::1")), XDP_DROP, None, {"drop_not_forwardable": 1}))
for _dst, _fam in (("255.255.255.255", 4), ("224.0.0.1", 4), ("239.1.2.3", 4), ("fe80::1", 6), ("ff02::1", 6),
                   ("ff0e::1", 6)):
    _name = _dst.replace(".", "_").replace(":", "_")
    add(Case(f"lma_uplink_to_{_name}_not_handed_to_the_stack", "lma", "tun0",
             lma_uplink_in(S_GREK4, inner(_fam, S_GREK4.mn(_fam), _dst)), XDP_DROP, None,
             {"drop_not_forwardable": 1},
             doc="broadcast, multicast and link-local traffic of an MN ends at its MAG (README)"))
add(Case("lma_downlink_from_loopback_source_not_forwarded", "lma", "core0",
         lma_core_in(S_GREK4, inner(4, "127.0.0.1", S_GREK4.mn4)), XDP_DROP, None, {"drop_not_forwardable": 1}))
_BIG = inner(4, CN4, S_GREK4.mn4, size=2000)
add(Case("mag_downlink_larger_than_the_access_mtu_dropped", "mag", "wan0", mag_downlink_in(S_GREK4, _BIG), XDP_DROP,
         None, {"drop_too_big": 1}, doc="acc0's MTU is 1500: a 2000-octet inner packet does not fit (RFC 1812 §5.2.2)"))
_G = raw(GRE(chksum_present=1, key_present=1, key=S_GREK4.key_ul, proto=ETH_P_IP) / Raw(_UP4))
_G = _G[:4] + bytes([_G[4] ^ 0xFF]) + _G[5:12]
add(Case("lma_gre_wrong_checksum_dropped", "lma", "tun0", lma_uplink_in(S_GREK4, _UP4, gre=_G), XDP_DROP, None,
         {"drop_gre_checksum": 1}, doc="RFC 2784 §2.5: C set, the checksum over GRE header and payload is wrong"))
_TLV_RES = struct.pack("!BBH", 0x05, 47, len(raw(GRE(key_present=1, key=S_TLV4.key_ul, proto=ETH_P_IP))) +
                       len(inner(4, S_TLV4.mn4, CN4)))
_f, _e = lma_uplink(S_TLV4, 4, tlv=_TLV_RES)
add(Case("lma_tlv_reserved_bits_ignored", "lma", "tun0", _f, XDP_REDIRECT, _e,
         doc="RFC 5845 §7.1: Res. MUST be ignored by the receiver"))

# --- IPv6 extension headers on the outer packet (RFC 8200 §4, RFC 2473 §5.1) ----------------------

from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, HBHOptUnknown, PadN  # noqa: E402


def _outer6_with(ext, payload: bytes, s: Sess, *, toward_lma=True):
    """GRE over IPv6 with extension headers `ext` (scapy layers) between IPv6 and GRE."""
    src, dst = (s.mag_addr, s.lma_addr) if toward_lma else (s.lma_addr, s.mag_addr)
    key = s.key_ul if toward_lma else s.key_dl
    eth_src, eth_dst = (WAN0_MAC, TUN0_MAC) if toward_lma else (TUN0_MAC, WAN0_MAC)
    return raw(Ether(src=eth_src, dst=eth_dst) / IPv6(src=src, dst=dst, hlim=64) / ext /
               GRE(key_present=1, key=key, proto=ethertype_of(payload)) / Raw(payload))


# What Linux's ip6gre sends by default: a Destination Options header with the Tunnel Encapsulation
# Limit option (type 4, value 4) and a PadN.
_TEL = IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=4, optdata=b"\x04"), PadN(optdata=b"\x00")])
for _fam in (4, 6):
    _pkt = inner(_fam, S_GREK6.mn(_fam), CN4 if _fam == 4 else CN6, df=_fam == 4)
    add(Case(f"lma_uplink_outer6_tunnel_encapsulation_limit_inner{_fam}", "lma", "tun0",
             _outer6_with(_TEL, _pkt, S_GREK6), XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_pkt)),
             doc="Linux ip6gre's default: Destination Options with Tunnel Encapsulation Limit"))
_pkt = inner(4, CN4, S_GREK6.mn4)
add(Case("mag_downlink_outer6_tunnel_encapsulation_limit", "mag", "wan0",
         _outer6_with(_TEL, _pkt, S_GREK6, toward_lma=False), XDP_REDIRECT,
         eth_ip(ACC0_MAC, S_GREK6.mn_mac, forwarded(_pkt))))
_pkt = inner(6, S_GREK6.mn6, CN6)
add(Case("lma_uplink_outer6_hop_by_hop_and_destination_options", "lma", "tun0",
         _outer6_with(IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00\x00\x00\x00")]) / _TEL, _pkt, S_GREK6),
         XDP_REDIRECT, eth_ip(CORE0_MAC, NH0_MAC, forwarded(_pkt))))
add(Case("lma_uplink_outer6_routing_header_with_segments_left_passes", "lma", "tun0",
         _outer6_with(IPv6ExtHdrRouting(type=4, segleft=1, addresses=["2001:db8:f::9"]), _pkt, S_GREK6), XDP_PASS,
         UNCHANGED, doc="a tunnel endpoint does not route on: not ours, the stack's to answer"))


def explain(exp: bytes, act: bytes) -> str:
    first = next((i for i in range(min(len(exp), len(act))) if exp[i] != act[i]), min(len(exp), len(act)))
    return (f"output differs: expected {len(exp)} octets, got {len(act)}; first difference at octet {first}\n"
            f"   off   expected{' ' * 40}|  actual\n{_hexdiff(exp, act)}\n"
            f"--- expected ---\n{_show(exp)}\n--- actual ---\n{_show(act)}")


class BpfVectors(unittest.TestCase):
    world = None

    @classmethod
    def setUpClass(cls):
        cls.world = World("bv")
        try:
            cls._build()
        except BaseException:
            cls.world.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.world:
            cls.world.close()

    @classmethod
    def _build(cls):
        w = cls.world
        lma, mag, peer = w.netns("lma"), w.netns("mag"), w.netns("peer")
        cls.lma_ns, cls.mag_ns = lma, mag
        peer.quiet()
        w.veth(lma, "tun0", peer, "p-tun0", a_mac=TUN0_MAC, mtu=TUN_TESTED_MTU)
        w.veth(lma, "core0", peer, "p-core0", a_mac=CORE0_MAC)
        w.veth(lma, "core1", peer, "p-core1", a_mac=CORE1_MAC)
        w.veth(lma, "corel2", peer, "p-corel2", a_mac=CORL2_MAC)
        w.veth(mag, "wan0", peer, "p-wan0", a_mac=WAN0_MAC)
        w.veth(mag, "acc0", peer, "p-acc0", a_mac=ACC0_MAC)
        lma.forwarding()
        mag.forwarding()
        for ns, cmds in ((lma, [
            f"addr add {LMA4}/24 dev tun0", f"addr add {LMA6}/64 dev tun0 nodad",
            f"addr add {CORE0_4}/24 dev core0", f"addr add {CORE0_6}/64 dev core0 nodad",
            f"addr add {CORE1_4}/24 dev core1", f"addr add {CORE1_6}/64 dev core1 nodad",
            "addr add 192.0.4.1/24 dev corel2", "addr add 2001:db8:e2::1/64 dev corel2 nodad",
            f"neigh replace {MAG4} lladdr {WAN0_MAC} dev tun0 nud permanent",
            f"neigh replace {MAG6} lladdr {WAN0_MAC} dev tun0 nud permanent",
            f"neigh replace {NH0_4} lladdr {NH0_MAC} dev core0 nud permanent",
            f"neigh replace {NH0_6} lladdr {NH0_MAC} dev core0 nud permanent",
            f"neigh replace {NH1_4} lladdr {NH1_MAC} dev core1 nud permanent",
            f"neigh replace {NH1_6} lladdr {NH1_MAC} dev core1 nud permanent",
            f"neigh replace {ONEARM_MAG4} lladdr {ONEARM_MAC} dev core0 nud permanent",
            # NONEIGH4/6 on tun0: deliberately no neighbour entry.
            f"route add 198.51.100.0/24 via {NH0_4} dev core0 metric 10",
            f"route add 198.51.100.0/24 via {NH1_4} dev core1 metric 20",
            f"route add 2001:db8:cc::/64 via {NH0_6} dev core0 metric 10",
            # The kernel's IPv6 output lookup only prefers the asked-for interface among routes of
            # the best metric: per-realm IPv6 routes to one prefix need equal metrics (README).
            f"route append 2001:db8:cc::/64 via {NH1_6} dev core1 metric 10",
            # Only realm 1 reaches this one: realm 2's uplink to it must be dropped, not leaked.
            f"route add 2001:db8:dd::/64 via {NH0_6} dev core0 metric 10",
        ]), (mag, [
            f"addr add {MAG4}/24 dev wan0", f"addr add {MAG6}/64 dev wan0 nodad",
            f"addr add {ACC0_4}/24 dev acc0", f"addr add {ACC0_6}/64 dev acc0 nodad",
            f"neigh replace {LMA4} lladdr {TUN0_MAC} dev wan0 nud permanent",
            f"neigh replace {LMA6} lladdr {TUN0_MAC} dev wan0 nud permanent",
        ])):
            for c in cmds:
                ns.ip(c)
        cls.lma = w.instance(lma, "lma", "lma", ["tun0:tunnel", "core0:core:1", "core1:core:2", "corel2:core-l2:1"])
        cls.mag = w.instance(mag, "mag", "mag", ["wan0:tunnel", "acc0:access"])
        cls.lma.add_session([s.lma_json() for s in ALL_SESSIONS])
        cls.mag.add_session([s.mag_json() for s in ALL_SESSIONS if s.at_mag])
        cls.lma.stats(reset=True)
        cls.mag.stats(reset=True)

    def inst(self, node):
        return self.lma if node == "lma" else self.mag

    def run_one(self, c: Case):
        inst = self.inst(c.node)
        inst.stats(reset=True)
        rv, out = inst.run(c.ifname, c.hook, c.frame)
        return rv, out, inst.nonzero_stats(reset=True)

    def check_output(self, c: Case, out: bytes, what="output"):
        if c.expect is None:
            return
        exp = c.frame if c.expect == UNCHANGED else c.expect(out) if callable(c.expect) else c.expect
        if exp != out:
            self.fail(f"{c.name}: {what}: {explain(exp, out)}")

    def run_case(self, c: Case):
        if c.setup:
            c.setup(type(self))
        try:
            rv, out, counters = self.run_one(c)
            names = VERDICT_NAMES[c.hook]
            if c.verdict == NOT_FORWARDED:
                self.assertIn(names.get(rv, rv), ("XDP_PASS", "XDP_DROP"),
                              f"{c.name}: forwarded (counters {counters})\n--- output ---\n{_show(out)}")
                if rv == XDP_PASS:
                    self.check_output(c, out)
                return
            self.assertEqual(names.get(rv, rv), names[c.verdict],
                             f"{c.name}: verdict (counters {counters})\n--- input ---\n{_show(c.frame)}")
            if c.counters == ANY_DROP:
                self.assertTrue(len(counters) == 1 and all(k.startswith("drop_") and v == 1
                                                           for k, v in counters.items()),
                                f"{c.name}: counters {counters}: expected one drop counter")
            else:
                alts = c.counters if isinstance(c.counters, list) else [c.counters]
                self.assertIn(counters, alts, f"{c.name}: counters")
            self.check_output(c, out)
            if c.twin:
                rv2, out2, counters2 = self.run_one(c.twin)
                self.assertEqual(rv2, c.twin.verdict, f"{c.name}: second packet of the flow: verdict")
                self.assertEqual(counters2, c.twin.counters, f"{c.name}: second packet of the flow: counters")
                self.check_output(c.twin, out2, "second packet of the flow")
                self.assertEqual(outer_flow_label(out), outer_flow_label(out2),
                                 f"{c.name}: two packets of one flow got different outer flow labels")
        finally:
            if c.cleanup:
                c.cleanup(type(self))

    def test_zz_loader_session_rekey_and_delete(self):
        """Replacing a session moves its keys, key-less entries and routes; deleting removes them."""
        s = Sess(30, "rekey", "gre", 4, keyed=True)
        lma = self.lma
        lma.add_session(s.lma_json())
        try:
            up, up_out = lma_uplink(s, 4)
            self.run_case(Case("rekey_before", "lma", "tun0", up, XDP_REDIRECT, up_out))
            j = s.lma_json()
            j["paths"][0]["key_uplink"] = 0x77777777
            lma.add_session(j)
            self.run_case(Case("rekey_old_key", "lma", "tun0", up, XDP_DROP, None, {"drop_unknown_key": 1}))
            new = lma_uplink_in(s, inner(4, s.mn4, CN4), key=0x77777777)
            self.run_case(Case("rekey_new_key", "lma", "tun0", new, XDP_REDIRECT, up_out))
            keyless = Sess(30, "rekey", "gre", 4)
            lma.add_session(keyless.lma_json())
            self.run_case(Case("rekey_keyed_to_keyless_key", "lma", "tun0", new, XDP_DROP, None,
                               {"drop_unknown_key": 1}))
            kl, kl_out = lma_uplink(keyless, 4)
            self.run_case(Case("rekey_keyless", "lma", "tun0", kl, XDP_REDIRECT, kl_out))
            down, down_out = lma_downlink(keyless, 6)
            self.run_case(Case("rekey_keyless_downlink", "lma", "core0", down, XDP_REDIRECT, down_out))
        finally:
            lma.del_session(30)
        self.run_case(Case("deleted_uplink", "lma", "tun0", kl, XDP_DROP, None, {"drop_no_session": 1}))
        self.run_case(Case("deleted_downlink", "lma", "core0", down, XDP_PASS, UNCHANGED))

    def test_zz_resolved_next_hop_skips_fib(self):
        """A resolved next hop (README "Next hops") is used without a FIB lookup: when the kernel's
        neighbour changes, packets keep the cached MAC until the cache is refreshed, then take the
        new one; a neighbour the kernel forgets leaves the entry unresolved (the FIB's way)."""
        s = S_GREK4
        frame, exp = lma_downlink(s, 4)

        def entry():   # refreshed, as the agent does after a neighbour event
            hops = json.loads(self.lma.dp("nexthops", "--refresh").stdout)
            # S_GREK4 pins no MTU; sessions that pin one have their own entry toward the same MAG
            mine = [h for h in hops if h["remote"] == MAG4 and h["local"] == LMA4 and h["pinned_mtu"] == 0]
            self.assertEqual(len(mine), 1, f"one unpinned next hop toward {MAG4} from {LMA4}: {hops}")
            return mine[0]

        def downlink_dmac():
            rv, out, counters = self.run_one(Case("nh", "lma", s.core, frame, XDP_REDIRECT))
            self.assertEqual(rv, XDP_REDIRECT, f"verdict (counters {counters})")
            self.assertEqual(out[6:], exp(out)[6:], explain(exp(out), out))
            return ":".join(f"{b:02x}" for b in out[:6])

        other = "02:00:00:00:0b:99"
        e = entry()
        self.assertEqual((e["resolved"], e["interface"], e["smac"], e["dmac"]), (True, "tun0", TUN0_MAC, WAN0_MAC))
        try:
            self.lma_ns.ip(f"neigh replace {MAG4} lladdr {other} dev tun0 nud permanent")
            self.assertEqual(downlink_dmac(), WAN0_MAC, "the cached neighbour, not the FIB's")
            self.assertEqual(entry()["dmac"], other)
            self.assertEqual(downlink_dmac(), other, "the refreshed neighbour")
            self.lma_ns.ip(f"neigh del {MAG4} dev tun0")
            self.assertFalse(entry()["resolved"], "a neighbour the kernel does not know is not resolved")
        finally:
            self.lma_ns.ip(f"neigh replace {MAG4} lladdr {WAN0_MAC} dev tun0 nud permanent")
            entry()
        self.assertEqual(downlink_dmac(), WAN0_MAC)

    def test_zz_no_icmp_from_tc(self):
        """tc ingress answers nothing: an ICMP plan counts as the drop it stands for."""
        _f = lma_core_in(S_GREK4, inner(4, CN4, S_GREK4.mn4, ttl=1))
        rv, _, counters = self.run_one(Case("tc_ttl", "lma", "core0", _f, TC_ACT_SHOT, hook="tc-ingress"))
        self.assertEqual(rv, TC_ACT_SHOT)
        self.assertEqual(counters, {"drop_ttl": 1})

    def test_zz_route_cache_serves_the_uplink_until_stale(self):
        """README "Route cache": the LMA uplink's route toward a correspondent is remembered. A
        changed neighbour is not seen while the entry serves; it is after the generation moves
        (what the agent does on netlink events) and once the entry is older than its TTL. The
        route's MTU is kept: a packet the route cannot take is refused from the cache as from
        the FIB. (The entries that must still serve get an hour: no timing on a busy machine.)"""
        s = S_GREK4
        small = lma_uplink_in(s, inner(4, s.mn4, CN4))
        big = lma_uplink_in(s, inner(4, s.mn4, CN4, size=1400))

        def dmac(frame=small):
            rv, out, counters = self.run_one(Case("rc", "lma", "tun0", frame, XDP_REDIRECT))
            self.assertEqual(rv, XDP_REDIRECT, f"verdict (counters {counters})")
            return ":".join(f"{b:02x}" for b in out[:6])

        def too_big():
            rv, _, counters = self.run_one(Case("rc_big", "lma", "tun0", big, XDP_DROP))
            return rv, counters

        def neighbour(mac):
            self.lma_ns.ip(f"neigh replace {NH0_4} lladdr {mac} dev core0 nud permanent")

        other = "02:00:00:00:c0:99"
        route = f"198.51.100.0/24 via {NH0_4} dev core0 metric 10"
        try:
            self.lma.reload(route_ttl_ms=3600 * 1000)
            self.assertEqual(dmac(), NH0_MAC, "the FIB's neighbour, now cached")
            neighbour(other)
            self.assertEqual(dmac(), NH0_MAC, "the cached route, not the FIB's")
            self.lma.dp("invalidate-routes")
            self.assertEqual(dmac(), other, "a new generation: the FIB again")
            neighbour(NH0_MAC)
            self.assertEqual(dmac(), other, "still the cached route")
            self.lma.dp("invalidate-routes")
            self.assertEqual(dmac(big), NH0_MAC, "1400 octets fit the route")
            # A forwarding lookup takes a route's MTU only when locked (ip_mtu_from_fib_result).
            self.lma_ns.ip(f"route replace {route} mtu lock 1300")
            self.lma.dp("invalidate-routes")
            self.assertEqual(too_big(), (XDP_DROP, {"drop_too_big": 1}), "the FIB's route MTU")
            self.assertEqual(dmac(), NH0_MAC, "a packet that fits: the route cached")
            self.lma_ns.ip(f"route replace {route}")
            self.assertEqual(too_big(), (XDP_DROP, {"drop_too_big": 1}), "the cached route's MTU")
            neighbour(other)
            self.lma.reload(route_ttl_ms=3600 * 1000)   # a restart moves the generation too
            self.assertEqual(dmac(big), other, "after a restart: the FIB again")
            neighbour(NH0_MAC)
            self.lma.reload(route_ttl_ms=200)
            self.assertEqual(dmac(), NH0_MAC)
            neighbour(other)
            time.sleep(1.0)   # five times the TTL: a slower machine only waits longer
            self.assertEqual(dmac(), other, "older than its TTL: the FIB again")
        finally:
            neighbour(NH0_MAC)
            self.lma_ns.ip(f"route replace {route}")
            self.lma.reload(None)
        self.assertEqual(dmac(big), NH0_MAC)

    # -- README "Every core for one tunnel": the XDP program's hand-off to another CPU ----------
    # BPF_PROG_TEST_RUN refuses cpumap programs, so these vectors check the decision on the
    # receiving CPU (pinned with taskset); tests/dataplane/test_spread.py sends real traffic
    # through the cpumap.

    def outcome(self, c: Case, cpu):
        """'spread' (handed on, untouched, counted) or 'here' (the case's own result, on `cpu`)."""
        self.lma.stats(reset=True)
        rv, out = self.lma.run(c.ifname, c.hook, c.frame, cpu=cpu)
        counters = self.lma.nonzero_stats(reset=True)
        if counters == {"cpu_spread": 1}:
            self.assertEqual((rv, out), (XDP_REDIRECT, c.frame), f"{c.name} on CPU {cpu}: handed on changed")
            return "spread"
        self.assertEqual((names := VERDICT_NAMES[c.hook]).get(rv, rv), names[c.verdict],
                         f"{c.name} on CPU {cpu}: counters {counters}")
        self.check_output(c, out)
        return "here"

    def spread_outcomes(self, cases):
        """Each case on CPU 0 and on CPU 1, twice: {name: (outcome on 0, outcome on 1)}."""
        got = {}
        for c in cases:
            first = tuple(self.outcome(c, cpu) for cpu in (0, 1))
            again = tuple(self.outcome(c, cpu) for cpu in (0, 1))
            self.assertEqual(first, again, f"{c.name}: one flow, two decisions")
            got[c.name] = first
        return got

    def test_zz_spread_flows_over_cpus(self):
        """With spread_cpus 0,1 every tunnel flow has one CPU: there it is decapsulated, on the
        other it is handed on unchanged (cpu_spread); both CPUs get flows; inner fragments go
        with their datagram's addresses; L2 sessions spread by inner MACs; traffic from the core
        is never handed on; with one CPU listed, everything goes to it."""
        if (os.cpu_count() or 1) < 2:
            self.skipTest("one CPU: nothing to spread over")
        flows = []
        for i in range(24):
            fam = 4 if i % 2 else 6
            pkt = inner(fam, S_GREK4.mn(fam), CN4 if fam == 4 else CN6, sport=41000 + i)
            flows.append(Case(f"flow{i}", "lma", "tun0", lma_uplink_in(S_GREK4, pkt), XDP_REDIRECT,
                              eth_ip(IF_MAC[S_GREK4.core], NH_MAC[S_GREK4.core], forwarded(pkt))))
        pkt = inner(4, S_GREK4.mn4, CN4, df=False, size=600)
        frags = [raw(fr) for fr in fragment(IP(pkt), fragsize=256)]
        self.assertGreater(len(frags), 1)
        frag_cases = [Case(f"fragment{i}", "lma", "tun0", lma_uplink_in(S_GREK4, fr), XDP_REDIRECT, None)
                      for i, fr in enumerate(frags)]
        l2 = [Case(f"l2_{i}", "lma", "tun0",
                   lma_uplink_in(S_L2_4, _fr := l2_frame(S_L2_4.mn_mac, f"02:00:00:00:5e:{i:02x}", "ipv4"),
                                 ethertype=ETH_P_TEB, outer_tos=0), XDP_REDIRECT, _fr) for i in range(16)]
        core = [Case(f"core{i}", "lma", "core0", lma_downlink(S_GREK4, 4, sport=42000 + i)[0], XDP_REDIRECT, None)
                for i in range(8)]
        self.lma.reload("0,1")
        try:
            got = self.spread_outcomes(flows)
            self.assertEqual(set(got.values()), {("here", "spread"), ("spread", "here")},
                             f"each flow on exactly one CPU, both CPUs used: {got}")
            fr = self.spread_outcomes(frag_cases)
            self.assertEqual(len(set(fr.values())), 1, f"the fragments of one datagram on one CPU: {fr}")
            l2got = self.spread_outcomes(l2)
            self.assertEqual(set(l2got.values()), {("here", "spread"), ("spread", "here")}, f"L2 flows: {l2got}")
            self.assertEqual(set(self.spread_outcomes(core).values()), {("here", "here")})
            self.lma.reload("1")
            self.assertEqual(set(self.spread_outcomes(flows).values()), {("spread", "here")},
                             "CPU 1 alone listed: CPU 0 hands every flow to it, CPU 1 keeps them")
        finally:
            self.lma.reload(None)
        self.assertEqual(set(self.spread_outcomes(flows).values()), {("here", "here")}, "spreading off again")


def _method(case: Case):
    def test(self):
        self.run_case(case)
    test.__doc__ = case.doc or None
    if case.bug:
        test = unittest.expectedFailure(test)
    return test


for _c in CASES:
    setattr(BpfVectors, f"test_{_c.name}", _method(_c))


def _leftovers(prefix):
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    pins = os.listdir("/sys/fs/bpf/xpmip") if os.path.isdir("/sys/fs/bpf/xpmip") else []
    return [n for n in ns.split() if n.startswith(prefix)] + [p for p in pins if p.startswith(prefix)]


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("run as root (namespaces, BPF)")
    prog = unittest.main(exit=False, verbosity=int(os.environ.get("VERBOSE", "1")) + 1)
    left = _leftovers(f"bv{os.getpid() % 100000}")
    if left:
        print(f"left behind: {left}", file=sys.stderr)
    sys.exit(0 if prog.result.wasSuccessful() and not left else 1)
