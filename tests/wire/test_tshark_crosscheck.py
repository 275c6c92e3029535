#!/usr/bin/env python3
"""tshark, an independent decoder, reads the PBUs and PBAs our codec builds, in both framings
(IPv6 / MH and IPv4 / UDP 5436), and every field it shows must be what we meant to send."""
import argparse
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from crosscheck_util import Tools, encode_pcap, tshark_fields  # noqa: E402

PBU = {
    "type": "PBU", "sequence": 4660, "flags": ["A", "H", "P", "T"], "lifetime": 150,
    "options": [
        {"type": "mn_id", "identifier": "mn1@xpmip.example"},
        {"type": "hnp", "prefix": "2001:db8:1:1::/64"},
        {"type": "hi", "value": 1},
        {"type": "att", "value": 4},
        {"type": "timestamp", "value": 0x00004c044c808000},
        {"type": "gre_key", "key": 0x1001},
        {"type": "link_local", "address": "fe80::1"},
    ],
}


def one(layers, field):
    values = layers.get(field)
    if not values:
        raise AssertionError(f"tshark shows no {field}: {layers}")
    return values[0]


class TsharkDecodesOurMessages(unittest.TestCase):
    FIELDS = ["ip.proto", "ipv6.nxt", "udp.srcport", "udp.dstport", "mip6.mhtype", "mip6.csum",
              "mip6.hlen", "mip6.bu.seqnr", "mip6.bu.a_flag", "mip6.bu.h_flag", "mip6.bu.p_flag",
              "mip6.bu.f_flag", "mip6.bu.t_flag", "mip6.bu.lifetime", "mip6.ba.status",
              "mip6.ba.seqnr", "mip6.ba.p_flag", "mip6.ba.t_flag", "mip6.ba.lifetime",
              "mip6.mnid.subtype", "mip6.mnid.identifier", "mip6.nemo.mnp.mnp",
              "mip6.nemo.mnp.pfl", "mip6.hi", "mip6.att", "mip6.timestamp_tmp", "mip6.gre_key",
              "mip6.options.grek", "mip6.lila_lla", "mip6.ipv4ha.ha", "mip6.ipv4ha.preflen",
              "mip6.ipv4aa.sts", "mip6.ipv4dra.dra", "mip6.ipv4coa.addr", "mip6.mobility_opt",
              "mip6.opt.len.invalid", "_ws.malformed"]

    def decode(self, messages, frame, **addr):
        pcap = encode_pcap(messages, frame, **addr)
        try:
            packets = tshark_fields(pcap, self.FIELDS)
        finally:
            os.unlink(pcap)
        self.assertEqual(len(packets), len(messages))
        for p in packets:
            self.assertNotIn("_ws.malformed", p, "tshark calls the packet malformed")
            self.assertNotIn("mip6.opt.len.invalid", p, "tshark finds an invalid option length")
        return packets

    def check_pbu_fields(self, p, f_flag="0"):
        self.assertEqual(one(p, "mip6.mhtype"), "5")
        self.assertEqual(one(p, "mip6.bu.seqnr"), "4660")
        self.assertEqual(one(p, "mip6.bu.a_flag"), "1")
        self.assertEqual(one(p, "mip6.bu.h_flag"), "1")
        self.assertEqual(one(p, "mip6.bu.p_flag"), "1")
        self.assertEqual(one(p, "mip6.bu.f_flag"), f_flag)
        self.assertEqual(one(p, "mip6.bu.t_flag"), "1")
        self.assertEqual(one(p, "mip6.bu.lifetime"), "150")
        self.assertEqual(one(p, "mip6.mnid.subtype"), "1")
        self.assertEqual(one(p, "mip6.mnid.identifier"), "mn1@xpmip.example")
        self.assertEqual(one(p, "mip6.nemo.mnp.mnp"), "2001:db8:1:1::")
        self.assertEqual(one(p, "mip6.nemo.mnp.pfl"), "64")
        self.assertEqual(one(p, "mip6.hi"), "1")
        self.assertEqual(one(p, "mip6.att"), "4")
        self.assertIn("2010 23:55:44.5", one(p, "mip6.timestamp_tmp"))
        self.assertEqual(one(p, "mip6.gre_key"), str(0x1001))
        # Raw option bytes: Type 33, Length 6, Reserved 0, key (RFC 5845 §6.1).
        self.assertEqual(one(p, "mip6.options.grek"), "2106000000001001")
        self.assertEqual(one(p, "mip6.lila_lla"), "fe80::1")

    def test_pbu_over_ipv6(self):
        p = self.decode([PBU], "ipv6", src="2001:db8:100::1", dst="2001:db8:200::1")[0]
        self.assertEqual(one(p, "ipv6.nxt"), "135")
        self.assertNotEqual(one(p, "mip6.csum"), "0x0000")
        self.check_pbu_fields(p)

    def test_pbu_over_ipv4_udp_5436(self):
        p = self.decode([dict(PBU, flags=["A", "H", "P", "F", "T"])], "udp", src="192.0.2.10",
                        dst="198.51.100.1", sport=5436)[0]
        self.assertEqual(one(p, "ip.proto"), "17")
        self.assertEqual(one(p, "udp.dstport"), "5436")
        self.assertEqual(one(p, "mip6.csum"), "0x0000")  # RFC 5844 §3
        self.check_pbu_fields(p, f_flag="1")

    def test_pba_accepted_with_uplink_key_and_t_flag(self):
        pba = {"type": "PBA", "status": 0, "sequence": 4660, "flags": ["P", "T"], "lifetime": 150,
               "options": [{"type": "mn_id", "identifier": "mn1@xpmip.example"},
                           {"type": "gre_key", "key": 0x2002}]}
        for frame in ("ipv6", "udp"):
            p = self.decode([pba], frame)[0]
            self.assertEqual(one(p, "mip6.mhtype"), "6")
            self.assertEqual(one(p, "mip6.ba.status"), "0")
            self.assertEqual(one(p, "mip6.ba.seqnr"), "4660")
            self.assertEqual(one(p, "mip6.ba.p_flag"), "1")
            self.assertEqual(one(p, "mip6.ba.t_flag"), "1")
            self.assertEqual(one(p, "mip6.ba.lifetime"), "150")
            self.assertEqual(one(p, "mip6.gre_key"), str(0x2002))
            self.assertEqual(one(p, "mip6.mnid.identifier"), "mn1@xpmip.example")

    def test_pba_status_codes_of_rfc5845(self):
        msgs = [{"type": "PBA", "status": s, "sequence": 9, "options": []} for s in (2, 3, 163)]
        packets = self.decode(msgs, "ipv6")
        self.assertEqual([one(p, "mip6.ba.status") for p in packets], ["2", "3", "163"])
        for p in packets:
            self.assertEqual(one(p, "mip6.ba.t_flag"), "0")
            self.assertNotIn("mip6.options.grek", p)

    def test_gre_key_option_without_key_field(self):
        pbu = {"type": "PBU", "sequence": 1, "lifetime": 10,
               "options": [{"type": "mn_id", "identifier": "mn2"}, {"type": "gre_key"}]}
        p = self.decode([pbu], "ipv6")[0]
        self.assertEqual(one(p, "mip6.options.grek"), "21020000")  # Length 2: GRE mode only
        self.assertNotIn("mip6.gre_key", p)

    def test_ipv4_options_of_rfc5844(self):
        pbu = {"type": "PBU", "sequence": 2, "flags": ["A", "H", "P", "F"], "lifetime": 100,
               "options": [{"type": "mn_id", "identifier": "mn4@operator-b.example"},
                           {"type": "ipv4_hoa_request", "prefix_length": 0, "address": "0.0.0.0"},
                           {"type": "ipv4_coa", "address": "192.0.2.10"}]}
        pba = {"type": "PBA", "status": 0, "sequence": 2, "lifetime": 100,
               "options": [{"type": "ipv4_hoa_reply", "status": 0, "prefix_length": 16,
                            "address": "10.0.0.7"},
                           {"type": "ipv4_default_router", "address": "10.0.0.1"}]}
        bu, ba = self.decode([pbu, pba], "udp")
        self.assertEqual(one(bu, "mip6.ipv4ha.ha"), "0.0.0.0")
        self.assertEqual(one(bu, "mip6.ipv4coa.addr"), "192.0.2.10")
        self.assertEqual(one(bu, "mip6.bu.f_flag"), "1")
        self.assertEqual(one(ba, "mip6.ipv4ha.ha"), "10.0.0.7")
        self.assertEqual(one(ba, "mip6.ipv4ha.preflen"), "16")
        self.assertEqual(one(ba, "mip6.ipv4aa.sts"), "0")
        self.assertEqual(one(ba, "mip6.ipv4dra.dra"), "10.0.0.1")

    def test_multipath_options_63_and_64_keep_the_option_walk_in_step(self):
        # tshark 4.0 does not dissect 63/64 but walks over them by their Length: the options
        # after them must still decode, which shows our lengths and padding are right.
        pbu = {"type": "PBU", "sequence": 3, "lifetime": 100,
               "options": [{"type": "mn_id", "identifier": "mn1"},
                           {"type": "mag_multipath_binding", "if_att": 4, "if_label": 1,
                            "binding_id": 5, "B": True},
                           {"type": "mag_identifier", "identifier": "mag1.example"},
                           {"type": "hi", "value": 2}, {"type": "att", "value": 3},
                           {"type": "gre_key", "key": 77}]}
        p = self.decode([pbu], "ipv6")[0]
        self.assertEqual(p["mip6.mobility_opt"], ["63", "64"])
        self.assertEqual(one(p, "mip6.hi"), "2")
        self.assertEqual(one(p, "mip6.att"), "3")
        self.assertEqual(one(p, "mip6.gre_key"), "77")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--tshark", default="tshark")
    args, rest = ap.parse_known_args()
    Tools.tool, Tools.tshark = args.tool, args.tshark
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
