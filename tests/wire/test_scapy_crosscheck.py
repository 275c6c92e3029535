#!/usr/bin/env python3
"""Our codec reads PBUs and PBAs built by scapy (an independent encoder), in both framings, and
rejects malformed ones with the right field named. scapy also checks the MH checksum we compute.

scapy 2.5 has no classes for the PMIPv6 options, so they are built raw with MIP6OptUnknown
(type, data), exactly as RFC 5213 / 5844 / 5845 / 8278 lay them out; scapy does not align them,
which also exercises our acceptance of any legal padding. Its BU flag field has only A..P (the
F, T and B bits live in its 9-bit 'reserved' field) and its BA flags only K, R, P (T is the top
bit of 'res2')."""
import argparse
import ipaddress
import os
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from crosscheck_util import Tools, decode_hex  # noqa: E402

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import (IPv6, MIP6MH_BA, MIP6MH_BE, MIP6MH_BU, MIP6MH_Generic,  # noqa: E402
                                MIP6OptMNID, MIP6OptUnknown, in6_chksum)

BU_F, BU_T = 0x100, 0x080   # bits of scapy's 9-bit BU 'reserved' field
BA_T = 0x10                 # bit of scapy's 5-bit BA 'res2' field


def opt(otype, data):
    return MIP6OptUnknown(otype=otype, odata=data)


def hnp(prefix):
    net = ipaddress.IPv6Network(prefix)
    return opt(22, bytes([0, net.prefixlen]) + net.network_address.packed)


def hi(v):
    return opt(23, bytes([0, v]))


def att(v):
    return opt(24, bytes([0, v]))


def timestamp(v):
    return opt(27, struct.pack("!Q", v))


def gre_key(key=None):
    return opt(33, b"\0\0" + (struct.pack("!I", key) if key is not None else b""))


def ipv4_hoa_request(plen, addr):
    return opt(36, struct.pack("!H", plen << 10) + ipaddress.IPv4Address(addr).packed)


def multipath(if_att, label, bid, b=False, o=False):
    return opt(63, bytes([if_att, label, bid, (0x80 if b else 0) | (0x40 if o else 0), 0, 0]))


def mag_id(identifier):
    return opt(64, bytes([1, 0]) + identifier.encode())


def options_of(decoded):
    return [o["type"] for o in decoded["options"]]


def find(decoded, otype):
    for o in decoded["options"]:
        if o["type"] == otype:
            return o
    raise AssertionError(f"no {otype} option in {decoded}")


class CodecDecodesScapyMessages(unittest.TestCase):
    def decode_ok(self, pkt, bare_mh=False):
        rc, out = decode_hex(bytes(pkt), bare_mh)
        self.assertEqual(rc, 0, out)
        return out

    def decode_error(self, pkt):
        rc, out = decode_hex(bytes(pkt))
        self.assertEqual(rc, 2, out)
        return out

    def test_pbu_over_ipv6_with_rfc5213_and_rfc5845_options(self):
        pkt = IPv6(src="2001:db8:100::1", dst="2001:db8:200::1") / MIP6MH_BU(
            seq=4660, flags="AHP", reserved=BU_T, mhtime=150,
            options=[MIP6OptMNID(subtype=1, id=b"mn1@xpmip.example"), hnp("2001:db8:1:1::/64"),
                     hi(1), att(4), timestamp(0x00004C044C808000), gre_key(0x1001)])
        d = self.decode_ok(pkt)  # scapy's MH checksum is verified on the way in
        self.assertEqual(d["type"], "PBU")
        self.assertEqual(d["transport"], "ipv6")
        self.assertEqual(d["src"], "2001:db8:100::1")
        self.assertEqual(d["sequence"], 4660)
        self.assertEqual(sorted(d["flags"]), ["A", "H", "P", "T"])
        self.assertEqual(d["lifetime"], 150)
        self.assertEqual(d["lifetime_seconds"], 600)
        self.assertEqual(options_of(d), ["mn_id", "hnp", "hi", "att", "timestamp", "gre_key"])
        self.assertEqual(find(d, "mn_id")["identifier"], "mn1@xpmip.example")
        self.assertEqual(find(d, "hnp")["prefix"], "2001:db8:1:1::/64")
        self.assertEqual(find(d, "hi")["value"], 1)
        self.assertEqual(find(d, "att")["value"], 4)
        self.assertEqual(find(d, "timestamp")["value"], 0x00004C044C808000)
        self.assertEqual(find(d, "gre_key")["key"], 0x1001)

    def test_pbu_over_ipv4_udp_5436_gre_mode_only_and_multipath(self):
        mh = MIP6MH_BU(seq=7, flags="AHP", reserved=BU_F | BU_T, mhtime=255, cksum=0,
                       options=[MIP6OptMNID(subtype=1, id=b"mn2"), ipv4_hoa_request(0, "0.0.0.0"),
                                hi(1), att(3), gre_key(), multipath(4, 1, 5, b=True),
                                mag_id("mag1.example")])
        pkt = IP(src="192.0.2.10", dst="198.51.100.1") / UDP(sport=40000, dport=5436) / mh
        d = self.decode_ok(pkt)
        self.assertEqual(d["transport"], "ipv4-udp")
        self.assertEqual(d["sport"], 40000)
        self.assertEqual(d["dport"], 5436)
        self.assertEqual(sorted(d["flags"]), ["A", "F", "H", "P", "T"])
        self.assertNotIn("key", find(d, "gre_key"))  # Length 2: GRE encapsulation mode only
        self.assertEqual(find(d, "ipv4_hoa_request")["address"], "0.0.0.0")
        mp = find(d, "mag_multipath_binding")
        self.assertEqual((mp["if_att"], mp["if_label"], mp["binding_id"], mp["B"], mp["O"]),
                         (4, 1, 5, True, False))
        self.assertEqual(find(d, "mag_identifier")["identifier"], "mag1.example")

    def test_pba_over_ipv6_with_uplink_key_and_t_flag(self):
        pkt = IPv6(src="2001:db8:200::1", dst="2001:db8:100::1") / MIP6MH_BA(
            status=0, flags="P", res2=BA_T, seq=4660, mhtime=150,
            options=[MIP6OptMNID(subtype=1, id=b"mn1@xpmip.example"), gre_key(0x2002)])
        d = self.decode_ok(pkt)
        self.assertEqual(d["type"], "PBA")
        self.assertEqual(d["status"], 0)
        self.assertEqual(d["status_name"], "ACCEPTED")
        self.assertEqual(sorted(d["flags"]), ["P", "T"])
        self.assertEqual(d["sequence"], 4660)
        self.assertEqual(find(d, "gre_key")["key"], 0x2002)

    def test_pba_status_codes_over_udp(self):
        for status, name in ((2, "GRE_KEY_OPTION_NOT_REQUIRED"),
                             (3, "GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED"),
                             (163, "GRE_KEY_OPTION_REQUIRED"),
                             (180, "CANNOT_SUPPORT_MULTIPATH_BINDING")):
            pkt = IP(src="198.51.100.1", dst="192.0.2.10") / UDP(sport=5436, dport=40000) / \
                MIP6MH_BA(status=status, flags="P", seq=3, mhtime=0, cksum=0)
            d = self.decode_ok(pkt)
            self.assertEqual((d["status"], d["status_name"]), (status, name))
            self.assertEqual(d["options"], [])

    def test_bad_gre_key_length_is_rejected_naming_the_field(self):
        pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_BU(
            seq=1, flags="AHP", mhtime=10,
            options=[MIP6OptMNID(subtype=1, id=b"mn1"), opt(33, b"\0\0\0\0")])
        e = self.decode_error(pkt)
        self.assertEqual(e["field"], "Mobility Header GRE Key option Length")
        self.assertIn("must be 2 or 6", e["reason"])
        # MNID (2+4 octets) starts at MH offset 12, so the GRE option's Length is at 12+6+1.
        self.assertEqual(e["offset"], 40 + 19)

    def test_multipath_with_b_and_o_is_rejected(self):
        pkt = IPv6() / MIP6MH_BU(seq=1, flags="AHP", mhtime=10,
                                 options=[multipath(4, 1, 5, b=True, o=True)])
        e = self.decode_error(pkt)
        self.assertEqual(e["field"], "Mobility Header MAG Multipath-Binding option Flags")

    def test_multipath_binding_id_255_is_rejected(self):
        pkt = IPv6() / MIP6MH_BU(seq=1, flags="AHP", mhtime=10, options=[multipath(4, 1, 255)])
        e = self.decode_error(pkt)
        self.assertEqual(e["field"], "Mobility Header MAG Multipath-Binding option Binding-Id")

    def test_empty_mn_identifier_is_rejected(self):
        pkt = IPv6() / MIP6MH_BU(seq=1, flags="AHP", mhtime=10, options=[MIP6OptMNID(subtype=1, id=b"")])
        e = self.decode_error(pkt)
        self.assertEqual(e["field"], "Mobility Header Mobile Node Identifier option Identifier")
        self.assertEqual(e["reason"], "empty")

    def test_option_running_past_the_end_is_rejected(self):
        # A GRE Key option claiming 6 octets of data at the very end of the message.
        mh = bytearray(bytes(MIP6MH_BU(seq=1, flags="AHP", mhtime=10, cksum=0,
                                       options=[MIP6OptMNID(subtype=1, id=b"abc")])))
        self.assertEqual(len(mh), 24)        # 12 + MN-ID (6) + PadN(4) at offset 18
        mh[18:24] = bytes([0, 0, 33, 6, 0, 0])   # Pad1, Pad1, GRE Key option at 20 with 2 of 6 octets
        rc, e = decode_hex(bytes(mh), bare_mh=True)
        self.assertEqual(rc, 2, e)
        self.assertEqual(e["field"], "GRE Key option Length")
        self.assertEqual(e["offset"], 21)
        self.assertIn("runs past the end", e["reason"])

    def test_timestamp_of_wrong_length_is_rejected(self):
        pkt = IPv6() / MIP6MH_BU(seq=1, flags="AHP", mhtime=10, options=[opt(27, b"\0" * 6)])
        e = self.decode_error(pkt)
        self.assertEqual(e["field"], "Mobility Header Timestamp option Length")

    def test_corrupted_checksum_is_rejected(self):
        raw = bytearray(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_BU(
            seq=1, flags="AHP", mhtime=10, options=[MIP6OptMNID(subtype=1, id=b"mn1")])))
        raw[-1] ^= 0x01   # a padding octet: only the checksum can catch it
        e = self.decode_error(raw)
        self.assertEqual(e["field"], "Mobility Header Checksum")

    def test_checksum_is_verified_before_the_message(self):
        # RFC 6275 §9.2: a bad checksum is found first, even when an option is malformed too.
        raw = bytearray(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_BU(
            seq=1, flags="AHP", mhtime=10,
            options=[MIP6OptMNID(subtype=1, id=b"mn1"), opt(33, b"\0\0\0\0")])))
        self.assertEqual(self.decode_error(raw)["field"], "Mobility Header GRE Key option Length")
        raw[44] ^= 0x01   # now the checksum is wrong as well
        self.assertEqual(self.decode_error(raw)["field"], "Mobility Header Checksum")

    def test_binding_error_built_by_scapy_decodes(self):
        # RFC 6275 §6.1.9 Binding Error (MH Type 7), with scapy's checksum: status and home address.
        pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_BE(status=1, ha="2001:db8::9")
        d = self.decode_ok(pkt)
        self.assertEqual((d["type"], d["status"], d["home_address"]), ("binding-error", 1, "2001:db8::9"))
        d = self.decode_ok(IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_BE(status=2))
        self.assertEqual((d["status"], d["home_address"]), (2, "::"))

    def test_binding_revocation_built_by_scapy_decodes(self):
        # RFC 5846 §5.1: scapy has no BRI layer; its generic Mobility Header with the fields laid
        # out by hand, its options built by scapy, and its checksum.
        body = struct.pack("!BBHH", 1, 128, 0x4242, 0xa000) + bytes(MIP6OptMNID(subtype=1, id=b"mag1@op.example"))
        body += b"\0" * ((-(6 + len(body))) % 8)
        d = self.decode_ok(IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_Generic(mhtype=16, msg=body))
        self.assertEqual((d["type"], d["trigger"], d["sequence"]), ("BRI", 128, 0x4242))
        self.assertEqual(d["flags"], {"P": True, "V": False, "G": True})
        self.assertEqual(find(d, "mn_id")["identifier"], "mag1@op.example")
        bra = struct.pack("!BBHH", 2, 0, 0x4242, 0x8000) + b"\0" * 4
        d = self.decode_ok(IPv6(src="2001:db8::2", dst="2001:db8::1") / MIP6MH_Generic(mhtype=16, msg=bra))
        self.assertEqual((d["type"], d["status"], d["sequence"], d["status_name"]), ("BRA", 0, 0x4242, "success"))
        bad = struct.pack("!BBHH", 3, 0, 1, 0x8000) + b"\0" * 4
        e = self.decode_error(IPv6(src="2001:db8::2", dst="2001:db8::1") / MIP6MH_Generic(mhtype=16, msg=bad))
        self.assertEqual((e["field"], e["offset"]), ("Mobility Header B.R. Type", 46))

    def test_an_unknown_mh_type_is_reported_as_unsupported(self):
        # RFC 6275 §9.2: MH Type 12 (Home Agent Switch, RFC 5142), well formed: a Binding Error's case.
        fixed = IPv6(src="2001:db8::1", dst="2001:db8::2") / MIP6MH_Generic(mhtype=12, msg=b"\0\0")
        e = self.decode_error(fixed)
        self.assertEqual(e["field"], "Mobility Header MH Type")
        self.assertEqual(e["offset"], 42)
        self.assertIn("12 is not supported", e["reason"])

    def test_ethernet_padding_after_a_short_ipv4_packet_is_ignored(self):
        # 20 + 8 + 16 = 44 octets; an Ethernet frame carries 46 at least (2 octets of padding).
        pkt = bytes(IP(src="198.51.100.1", dst="192.0.2.10") / UDP(sport=5436, dport=40000) /
                    MIP6MH_BA(status=163, flags="P", seq=3, mhtime=0, cksum=0))
        self.assertEqual(len(pkt), 44)
        d = self.decode_ok(pkt + b"\0\0")
        self.assertEqual((d["status"], d["dport"]), (163, 40000))
        e = self.decode_error(pkt[:-1])   # Total Length beyond the buffer stays an error
        self.assertEqual(e["field"], "IPv4 Total Length")

    def test_encoder_refuses_out_of_range_json_numbers(self):
        for spec, key in (('{"type":"PBA","flags_raw":511}', "flags_raw"),
                          ('{"type":"PBU","options":[{"type":"bid","binding_id":65536}]}', "binding_id"),
                          ('{"type":"PBU","options":[{"type":"unknown","option_type":200,'
                           '"data":"0x01"}]}', "data")):
            r = subprocess.run([Tools.tool, "encode", "--frame", "mh", "-"], input=spec,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn(key, r.stderr)

    def test_scapy_agrees_with_our_mh_checksum(self):
        hexpkt = subprocess.run(
            [Tools.tool, "encode", "--frame", "ipv6", "--src", "2001:db8:100::1", "--dst",
             "2001:db8:200::1", "-"], check=True, capture_output=True, text=True,
            input='{"type":"PBU","sequence":9,"lifetime":3,"options":[{"type":"mn_id",'
                  '"identifier":"mn9@x"},{"type":"gre_key","key":99}]}').stdout.strip()
        pkt = IPv6(bytes.fromhex(hexpkt))
        ours = pkt[MIP6MH_BU].cksum
        mh = bytearray(bytes(pkt[MIP6MH_BU]))
        mh[4:6] = b"\0\0"
        self.assertEqual(in6_chksum(135, pkt, bytes(mh)), ours)
        self.assertEqual(pkt[MIP6MH_BU].seq, 9)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    args, rest = ap.parse_known_args()
    Tools.tool = args.tool
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
