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


# The messages of the golden vectors kPbuLkmrbDhcpLinkLayerId, kPbuBindingIdentifiers and
# kPbaKrbNatHoaReply (tests/wire/golden_vectors.hpp), as xpmip-mh JSON.
PBU_LKMRB = {
    "type": "PBU", "sequence": 3, "flags": ["A", "H", "L", "K", "M", "R", "P", "B"], "lifetime": 100,
    "options": [
        {"type": "mn_id", "identifier": "mn3"},
        {"type": "ipv4_dhcp_support_mode", "server": True},
        {"type": "mn_ll_id", "identifier": "02005e005301"},
    ],
}
PBU_BIDS = {
    "type": "PBU", "sequence": 4, "lifetime": 100,
    "options": [
        {"type": "mn_id", "identifier": "mn3"},
        {"type": "bid", "binding_id": 1, "H": True, "priority": 5},
        {"type": "bid", "binding_id": 2, "priority": 127, "care_of": "192.0.2.10"},
        {"type": "bid", "binding_id": 259, "H": True, "priority": 3, "care_of": "2001:db8::8"},
    ],
}
PBA_KRB = {
    "type": "PBA", "status": 0, "sequence": 4, "flags": ["K", "R", "P", "B"], "lifetime": 100,
    "options": [
        {"type": "nat_detection", "udp_encapsulation_required": True, "refresh_time": 110},
        {"type": "ipv4_hoa_reply", "status": 130, "prefix_length": 24, "address": "10.1.2.3"},
        {"type": "bid", "binding_id": 1, "status": 128},
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
              "mip6.bu.l_flag", "mip6.bu.k_flag", "mip6.bu.m_flag", "mip6.nemo.bu.r_flag",
              "mip6.bu.b_flag", "mip6.ba.k_flag", "mip6.nemo.ba.r_flag", "mip6.ba.b_flag",
              "mip6.natd.f_flag", "mip6.natd.refresh_t", "mip6.options.natd", "mip6.ipv4dsm.s_flag",
              "mip6.options.ipv4dsm", "mip6.mnlli.lli", "mip6.options.mnlli", "mip6.bi.bid",
              "mip6.bi.status", "mip6.bi.h_flag", "mip6.bi.coa_ipv4", "mip6.bi.coa_ipv6",
              "mip6.options.bi", "mip6.options.ipv4harep", "mip6.hb.u_flag", "mip6.hb.r_flag",
              "mip6.hb.seqnr", "mip6.rc", "mip6.options.rc", "mip6.be.status", "mip6.be.haddr",
              "mip6.bri_br.type", "mip6.bri_r.trigger", "mip6.bri_status", "mip6.bri_seqnr", "mip6.bri_ip",
              "mip6.bri_iv", "mip6.bri_ig", "mip6.bri_ap", "mip6.bri_av", "mip6.bri_ag",
              "mip6.mng.sub_type", "mip6.mng.mng_id",
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
        # 2 GRE_KEY_OPTION_NOT_REQUIRED and 163 GRE_KEY_OPTION_REQUIRED carry no GRE Key option;
        # 3 GRE_TUNNELING_BUT_TLV_HEADER_NOT_SUPPORTED accepts GRE, so its PBA has the uplink
        # key (RFC 5845 §6.4). Each carries an MN-ID, so tshark walks an options area in every
        # packet and the absence of the GRE Key option is a real observation.
        mn_id = {"type": "mn_id", "identifier": "mn5@xpmip.example"}
        msgs = [{"type": "PBA", "status": 2, "sequence": 9, "options": [mn_id]},
                {"type": "PBA", "status": 3, "sequence": 9,
                 "options": [mn_id, {"type": "gre_key", "key": 0x3003}]},
                {"type": "PBA", "status": 163, "sequence": 9, "options": [mn_id]}]
        packets = self.decode(msgs, "ipv6")
        self.assertEqual([one(p, "mip6.ba.status") for p in packets], ["2", "3", "163"])
        for p in packets:
            self.assertEqual(one(p, "mip6.ba.t_flag"), "0")
            self.assertEqual(one(p, "mip6.mnid.identifier"), "mn5@xpmip.example")
        self.assertNotIn("mip6.options.grek", packets[0])
        self.assertEqual(one(packets[1], "mip6.gre_key"), str(0x3003))
        self.assertNotIn("mip6.options.grek", packets[2])

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

    def test_pbu_with_l_k_m_r_b_flags_dhcp_mode_and_link_layer_id(self):
        for frame in ("ipv6", "udp"):
            p = self.decode([PBU_LKMRB], frame)[0]
            self.assertEqual(one(p, "mip6.bu.seqnr"), "3")
            for flag in ("mip6.bu.a_flag", "mip6.bu.h_flag", "mip6.bu.l_flag", "mip6.bu.k_flag",
                         "mip6.bu.m_flag", "mip6.nemo.bu.r_flag", "mip6.bu.p_flag",
                         "mip6.bu.b_flag"):
                self.assertEqual(one(p, flag), "1", flag)
            self.assertEqual(one(p, "mip6.bu.f_flag"), "0")
            self.assertEqual(one(p, "mip6.bu.t_flag"), "0")
            self.assertEqual(one(p, "mip6.mnid.identifier"), "mn3")
            # RFC 5844 §3.3.4: Reserved (15 bits) then S.
            self.assertEqual(one(p, "mip6.ipv4dsm.s_flag"), "1")
            self.assertEqual(one(p, "mip6.options.ipv4dsm"), "27020001")
            # RFC 5213 §8.6: Reserved (2 octets) then the link-layer identifier.
            self.assertEqual(one(p, "mip6.mnlli.lli").replace(":", ""), "02005e005301")
            self.assertEqual(one(p, "mip6.options.mnlli"), "1908000002005e005301")

    def test_binding_identifiers_of_length_4_8_and_20(self):
        p = self.decode([PBU_BIDS], "ipv6")[0]
        self.assertEqual(p["mip6.bi.bid"], ["1", "2", "259"])
        self.assertEqual(p["mip6.bi.status"], ["0", "0", "0"])
        self.assertEqual(p["mip6.bi.h_flag"], ["1", "0", "1"])
        self.assertEqual(p["mip6.bi.coa_ipv4"], ["192.0.2.10"])
        self.assertEqual(p["mip6.bi.coa_ipv6"], ["2001:db8::8"])
        # tshark 4.0 has no BID-PRI field (RFC 6089): it delimits each option, and its last
        # octet before any care-of address is H | BID-PRI (0x85 = H + 5, 0x7f = 127, 0x83 = H + 3).
        self.assertEqual(p["mip6.options.bi"],
                         ["230400010085", "23080002007fc000020a",
                          "23140103008320010db8000000000000000000000008"])

    def test_pba_with_k_r_b_flags_nat_detection_and_ipv4_hoa_reply(self):
        for frame in ("ipv6", "udp"):
            p = self.decode([PBA_KRB], frame)[0]
            self.assertEqual(one(p, "mip6.ba.status"), "0")
            for flag in ("mip6.ba.k_flag", "mip6.nemo.ba.r_flag", "mip6.ba.p_flag", "mip6.ba.b_flag"):
                self.assertEqual(one(p, flag), "1", flag)
            self.assertEqual(one(p, "mip6.ba.t_flag"), "0")
            # RFC 5555 §4.2.2: F (1 bit), Reserved (15 bits), Refresh time (32 bits): Length 6.
            self.assertEqual(one(p, "mip6.natd.f_flag"), "1")
            self.assertEqual(one(p, "mip6.natd.refresh_t"), "110")
            self.assertEqual(one(p, "mip6.options.natd"), "1f0680000000006e")
            # RFC 5844 §3.3.2: Status 130, Pref-len 24, 10.1.2.3.
            self.assertEqual(one(p, "mip6.ipv4aa.sts"), "130")
            self.assertEqual(one(p, "mip6.ipv4ha.preflen"), "24")
            self.assertEqual(one(p, "mip6.ipv4ha.ha"), "10.1.2.3")
            self.assertEqual(one(p, "mip6.options.ipv4harep"), "250682600a010203")
            self.assertEqual(p["mip6.bi.bid"], ["1"])
            self.assertEqual(p["mip6.bi.status"], ["128"])
            self.assertEqual(p["mip6.bi.h_flag"], ["0"])

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

    def test_heartbeat_request_and_response_with_the_restart_counter(self):
        # RFC 5847 §6.1 and §6.2, over both transports.
        request = {"type": "heartbeat", "sequence": 77, "flags": {"U": False, "R": False}}
        response = {"type": "heartbeat", "sequence": 77, "flags": {"U": False, "R": True},
                    "options": [{"type": "restart_counter", "value": 3}]}
        for frame in ("ipv6", "udp"):
            q, r = self.decode([request, response], frame)
            self.assertEqual(one(q, "mip6.mhtype"), "13")
            self.assertEqual((one(q, "mip6.hb.seqnr"), one(q, "mip6.hb.r_flag"), one(q, "mip6.hb.u_flag")),
                             ("77", "0", "0"))
            self.assertEqual(one(r, "mip6.mhtype"), "13")
            self.assertEqual((one(r, "mip6.hb.seqnr"), one(r, "mip6.hb.r_flag")), ("77", "1"))
            self.assertEqual(one(r, "mip6.rc"), "3")

    def test_binding_error_status_and_home_address(self):
        # RFC 6275 §6.1.9, over both transports: what we answer an unknown MH Type with.
        unknown_type = {"type": "binding-error", "status": 2}
        with_home = {"type": "binding-error", "status": 1, "home_address": "2001:db8::9"}
        for frame in ("ipv6", "udp"):
            a, b = self.decode([unknown_type, with_home], frame)
            self.assertEqual(one(a, "mip6.mhtype"), "7")
            self.assertEqual((one(a, "mip6.be.status"), one(a, "mip6.be.haddr")), ("2", "::"))
            self.assertEqual((one(b, "mip6.be.status"), one(b, "mip6.be.haddr")), ("1", "2001:db8::9"))

    def test_binding_revocation_indication_and_acknowledgement(self):
        # RFC 5846 §5.1, §5.2 over both transports: a per-MN BRI, a global one, and a BRA.
        per_mn = {"type": "BRI", "trigger": 1, "sequence": 4097, "flags": {"P": True},
                  "options": [{"type": "mn_id", "identifier": "mn1@xpmip.example"},
                              {"type": "hnp", "prefix": "2001:db8:1:1::/64"}]}
        global_ = {"type": "BRI", "trigger": 128, "sequence": 4098, "flags": {"P": True, "G": True}}
        bra = {"type": "BRA", "status": 132, "sequence": 4097, "flags": {"P": True, "V": True}}
        for frame in ("ipv6", "udp"):
            a, g, b = self.decode([per_mn, global_, bra], frame)
            self.assertEqual(one(a, "mip6.mhtype"), "16")
            self.assertEqual((one(a, "mip6.bri_br.type"), one(a, "mip6.bri_r.trigger"), one(a, "mip6.bri_seqnr")),
                             ("1", "1", "4097"))
            self.assertEqual((one(a, "mip6.bri_ip"), one(a, "mip6.bri_iv"), one(a, "mip6.bri_ig")), ("1", "0", "0"))
            self.assertEqual(one(a, "mip6.mnid.identifier"), "mn1@xpmip.example")
            self.assertEqual(one(a, "mip6.nemo.mnp.mnp"), "2001:db8:1:1::")
            self.assertEqual((one(g, "mip6.bri_r.trigger"), one(g, "mip6.bri_ip"), one(g, "mip6.bri_ig")),
                             ("128", "1", "1"))
            self.assertEqual(one(g, "mip6.hlen"), "1")
            self.assertEqual((one(b, "mip6.bri_br.type"), one(b, "mip6.bri_status"), one(b, "mip6.bri_seqnr")),
                             ("2", "132", "4097"))
            self.assertEqual((one(b, "mip6.bri_ap"), one(b, "mip6.bri_av"), one(b, "mip6.bri_ag")), ("1", "1", "0"))

    def test_bulk_pbu_and_pba_with_the_mobile_node_group_identifier(self):
        # RFC 6602 §4.1-§4.3: B in the PBU (0x0040) and the PBA (0x08), option 50 in both.
        pbu = {"type": "PBU", "sequence": 9, "flags": ["A", "H", "P", "B"], "lifetime": 100,
               "options": [{"type": "mn_group_id", "subtype": 1, "group": 1}]}
        pba = {"type": "PBA", "status": 0, "sequence": 9, "flags": ["P", "B"], "lifetime": 100,
               "options": [{"type": "mn_group_id", "subtype": 1, "group": 77}]}
        for frame in ("ipv6", "udp"):
            u, a = self.decode([pbu, pba], frame)
            self.assertEqual((one(u, "mip6.bu.b_flag"), one(u, "mip6.mng.sub_type"), one(u, "mip6.mng.mng_id")),
                             ("1", "1", "1"))
            self.assertEqual((one(a, "mip6.ba.b_flag"), one(a, "mip6.mng.mng_id")), ("1", "77"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--tshark", default="tshark")
    args, rest = ap.parse_known_args()
    Tools.tool, Tools.tshark = args.tool, args.tshark
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
