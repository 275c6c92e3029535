#!/usr/bin/env python3
"""`xpmip check-config`: the example configuration is valid, and each kind of mistake is refused
with exit status 2 and a message naming the file, the line and the key."""
import json
import os
import re
import subprocess
import sys
import tempfile
import unittest

XPMIP = os.environ.get("XPMIP_BIN", "")
EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples")
EXAMPLE = os.path.join(EXAMPLES, "lma.yaml")

BASE = """instance: t
lma:
  addresses: [2001:db8:ffff::1, 192.0.2.1]
interfaces:
  - {name: tun0, kind: tunnel}
  - {name: core1, kind: core, realm: 1}
realms:
  - {id: 1, interface: core1, ipv4_pool: 10.0.0.0/16, ipv6_pool: "2001:db8:a::/48"}
peers:
  - {name: mag1, addresses: [2001:db8:ffff::10]}
mobile_nodes:
  - {id: mn1@example, realm: 1}
"""


MAG_BASE = """mag:
  addresses: [2001:db8:ffff::10]
  lma: 2001:db8:ffff::1
interfaces:
  - {name: wan0, kind: tunnel}
  - {name: acc0, kind: access}
mobile_nodes:
  - {id: mn1@example, mac: "02:00:00:00:01:01", interface: acc0}
"""


def check(text, role="lma"):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        r = subprocess.run([XPMIP, "check-config", "--role", role, f.name], capture_output=True, text=True)
        return r.returncode, (r.stdout + r.stderr).replace(f.name, "FILE")
    finally:
        os.unlink(f.name)


class SubscribersCommandTest(unittest.TestCase):
    """`xpmip subscribers import|add|remove|show` against a store named by the configuration: bad
    records refused with the record, line and field named and nothing written."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="xpmip-subscribers-")
        self.cfg = os.path.join(self.dir, "lma.yaml")
        with open(self.cfg, "w") as f:
            f.write(f"subscriber_store: {self.dir}/subscribers.lmdb\n" + BASE)

    def tearDown(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def xpmip(self, *args):
        r = subprocess.run([XPMIP, "subscribers", *args, "-c", self.cfg], capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_bad_record_is_named_and_nothing_is_written(self):
        good = self.write("good.csv", "id,realm,home_network_prefix\na@x,1,2001:db8:a:1::/64\nb@x,1,\n")
        rc, out = self.xpmip("import", good)
        self.assertEqual(rc, 0, out)
        self.assertIn("2 subscribers", out)
        bad = self.write("bad.csv", "id,realm,gre,ipv4_home_address\nc@x,1,,\nd@x,7,,\ne@x,1,never,\n"
                                    "f@x,1,,10.0.0.1\ng@x,1,,not-an-address\nmn1@example,1,,\n")
        rc, out = self.xpmip("import", bad)
        self.assertEqual(rc, 2, out)
        for want in ("record 2 (line 3): realm: realm 7 is not defined in realms",
                     "record 3 (line 4): gre: GRE policy 'never'",
                     "record 4 (line 5): ipv4_home_address: 10.0.0.1 is realm 1's default router",
                     "record 5 (line 6): ipv4_home_address: 'not-an-address' is not an IPv4 address",
                     "record 6 (line 7): id: 'mn1@example' is in the configuration's mobile_nodes",
                     "nothing imported"):
            self.assertIn(want, out)
        rc, out = self.xpmip("show", "--json")
        self.assertEqual(rc, 0, out)
        doc = json.loads(out)
        self.assertEqual([r["id"] for r in doc["result"]], ["a@x", "b@x"], "the store is as it was")
        jl = self.write("bad.jsonl", '{"id": "h@x", "realm": 1, "colour": "red"}\n')
        rc, out = self.xpmip("import", jl)
        self.assertEqual(rc, 2, out)
        self.assertIn("record 1 (line 1): colour: is not a subscriber field", out)

    def test_add_remove_show_and_a_taken_static_prefix(self):
        rc, out = self.xpmip("add", "--id", "s@x", "--realm", "1", "--home-network-prefix", "2001:db8:a:9::/64")
        self.assertEqual(rc, 0, out)
        rc, out = self.xpmip("add", "--id", "t@x", "--realm", "1", "--home-network-prefix", "2001:db8:a:9::/64")
        self.assertEqual(rc, 2, out)
        self.assertIn("subscriber 't@x': home_network_prefix: 2001:db8:a:9::/64 is already mobile node 's@x''s",
                      out)
        rc, out = self.xpmip("show", "s@x")
        self.assertEqual(rc, 0, out)
        self.assertIn("id=s@x realm=1", out)
        self.assertIn("home_network_prefix=2001:db8:a:9::/64", out)
        rc, out = self.xpmip("remove", "s@x", "nobody@x")
        self.assertEqual(rc, 1, out)
        self.assertIn("not in the store (nothing removed): nobody@x", out)
        rc, out = self.xpmip("remove", "s@x")
        self.assertEqual(rc, 0, out)
        rc, out = self.xpmip("show", "s@x")
        self.assertEqual(rc, 1, out)

    def test_a_relative_store_path_is_refused(self):
        rel = self.write("rel.yaml", "subscriber_store: subscribers.lmdb\n" + BASE)
        rc, out = check(open(rel).read())
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, r"FILE:1: subscriber_store: 'subscribers.lmdb' is not an absolute path")

    def test_a_configuration_without_a_store_is_refused(self):
        plain = self.write("plain.yaml", BASE)
        r = subprocess.run([XPMIP, "subscribers", "show", "-c", plain], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("has no subscriber_store", r.stderr)


class ConfigTest(unittest.TestCase):
    def test_example_and_base_are_valid(self):
        r = subprocess.run([XPMIP, "check-config", EXAMPLE], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(check(BASE)[0], 0, check(BASE)[1])

    def refused(self, text, line, pattern, role="lma"):
        rc, out = check(text, role)
        self.assertEqual(rc, 2, out)
        self.assertRegex(out, rf"FILE:{line}: {pattern}")

    def test_unknown_key_names_it_and_lists_the_known_ones(self):
        self.refused(BASE.replace("  - {id: 1, interface", "  - {id: 1, colour: red, interface"), 8,
                     r"realms\[0\]\.colour: unknown key \(known here: .*interface.*\)")
        self.refused(BASE + "lifetime: 5\n", 13, r"lifetime: unknown key")

    def test_bad_address_and_prefix(self):
        self.refused(BASE.replace("2001:db8:ffff::10", "2001:db8:ffff::zz"), 10,
                     r"peers\[0\]\.addresses: '2001:db8:ffff::zz' is not an IPv4 or IPv6 address")
        self.refused(BASE.replace("10.0.0.0/16", "10.0.0.0/33"), 8, r"realms\[0\]\.ipv4_pool: '10.0.0.0/33' is not")
        self.refused(BASE.replace("10.0.0.0/16", "10.0.0.1/16"), 8, r"realms\[0\]\.ipv4_pool: .*host bits set")

    def test_missing_interface_and_wrong_kind(self):
        self.refused(BASE.replace("interface: core1", "interface: core9"), 8,
                     r"realms\[0\]\.interface: 'core9' is not in interfaces")
        self.refused(BASE.replace("interface: core1", "interface: tun0"), 8,
                     r"realms\[0\]\.interface: 'tun0' must be listed in interfaces with kind core and realm 1")

    def test_references_and_duplicates(self):
        self.refused(BASE.replace("{id: mn1@example, realm: 1}", "{id: mn1@example, realm: 7}"), 12,
                     r"mobile_nodes\[0\]\.realm: realm 7 is not defined")
        self.refused(BASE + "  - {id: mn1@example, realm: 1}\n", 13, r"mobile_nodes\[1\]\.id: .*listed twice")
        self.refused(BASE + "  - {id: a@x, realm: 1, ipv4_home_address: 10.0.0.9}\n"
                            "  - {id: b@x, realm: 1, ipv4_home_address: 10.0.0.9}\n", 14,
                     r"mobile_nodes\[2\]\.ipv4_home_address: 10.0.0.9 is already mobile node 'a@x'")
        self.refused(BASE.replace("peers:\n", "peers:\n  - {name: mag0, addresses: [2001:db8:ffff::10]}\n"), 11,
                     r"peers\[1\]\.addresses: 2001:db8:ffff::10 is already the address of peer 'mag0'")

    def test_bad_values(self):
        self.refused(BASE.replace("  addresses: [2001:db8:ffff::1,", "  gre: maybe\n  addresses: [2001:db8:ffff::1,", 1), 3,
                     r"lma\.gre: 'maybe' is not one of: allowed, not-required, unsupported, gre-required, keys-required")
        self.refused(BASE + "metrics: localhost:99999\n", 13,
                     r"metrics: 'localhost:99999' is not address:port")
        self.refused(BASE + "timers: {max_lifetime: 999999}\n", 13, r"timers\.max_lifetime: 999999 is out of range")
        self.refused(BASE + "timers: {min_delay_before_bce_delete: soon}\n", 13,
                     r"timers\.min_delay_before_bce_delete: 'soon' is not a number of seconds")
        self.refused(BASE.replace("kind: core, realm: 1}", "kind: core, realm: -1}"), 6,
                     r"interfaces\[1\]\.realm: '-1' is not a whole number")

    def test_spread_cpus(self):
        """dataplane.spread_cpus (README "Every core for one tunnel"): all, none, ids and ranges."""
        for ok in ("all", "none", "0", "[0]", "'0-0'"):
            self.assertEqual(check(BASE + f"dataplane: {{spread_cpus: {ok}}}\n")[0], 0, ok)
        if (os.cpu_count() or 1) > 1:
            self.assertEqual(check(BASE + "dataplane: {spread_cpus: [0, 1]}\n")[0], 0)
            self.assertEqual(check(MAG_BASE + "dataplane: {spread_cpus: 0-1}\n", role="mag")[0], 0)
        self.refused(BASE + "dataplane: {spread_cpus: 4096}\n", 13,
                     r"dataplane\.spread_cpus: CPU list '4096': CPU 4096 does not exist")
        self.refused(BASE + "dataplane: {spread_cpus: [0, 0]}\n", 13,
                     r"dataplane\.spread_cpus: CPU list '0,0': CPU 0 is listed twice")
        self.refused(BASE + "dataplane: {spread_cpus: some}\n", 13,
                     r"dataplane\.spread_cpus: CPU list 'some': 'some' is not a CPU number or range")
        self.refused(BASE + "dataplane: {spread_cpu: all}\n", 13, r"dataplane\.spread_cpu: unknown key")
        self.assertEqual(check(BASE + "dataplane: {route_cache: false}\n")[0], 0)
        self.refused(BASE + "dataplane: {route_cache: maybe}\n", 13, r"dataplane\.route_cache: 'maybe' is not")

    def test_mobile_node_domains(self):
        domains = BASE + "mobile_node_domains:\n  - {domain: Operator.Example, realm: 1, gre: keys-required}\n"
        rc, out = check(domains)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 mobile node domain(s)", out)
        entry = BASE + "mobile_node_domains:\n  - {domain: op.example, realm: 1, %s}\n"
        self.refused(entry % "colour: red", 14, r"mobile_node_domains\[0\]\.colour: unknown key \(known here: .*domain")
        self.refused(BASE + "mobile_node_domains:\n  - {domain: op.example, realm: 7}\n", 14,
                     r"mobile_node_domains\[0\]\.realm: realm 7 is not defined in realms")
        self.refused(BASE + "mobile_node_domains:\n  - {realm: 1}\n", 14, r"mobile_node_domains\[0\]\.domain: ")
        self.refused(domains + "  - {domain: operator.example, realm: 1}\n", 15,
                     r"mobile_node_domains\[1\]\.domain: domain 'operator.example' is listed twice")
        for bad in ("mn@op.example", "op..example", ".op.example", "op example"):
            self.refused(BASE + f"mobile_node_domains:\n  - {{domain: '{bad}', realm: 1}}\n", 14,
                         rf"mobile_node_domains\[0\]\.domain: '{re.escape(bad)}' is not an NAI realm")
        self.refused(entry % "ipv4_home_address: 10.0.0.9", 14,
                     r"mobile_node_domains\[0\]\.ipv4_home_address: a domain's mobile nodes share its profile: "
                     r"static addresses need a mobile_nodes entry")
        self.refused(entry % "ipv4: false, ipv6: false", 14,
                     r"mobile_node_domains\[0\]: is authorized for neither IPv4 nor IPv6")
        self.refused(entry % "gre: maybe", 14, r"mobile_node_domains\[0\]\.gre: 'maybe' is not one of")
        no_v4_pool = domains.replace("ipv4_pool: 10.0.0.0/16, ", "").replace("realm: 1}\nmobile_node_domains",
                                                                              "realm: 1, ipv4: false}\nmobile_node_domains")
        self.refused(no_v4_pool, 14, r"mobile_node_domains\[0\]\.ipv4: realm 1 has no ipv4_pool")

    def test_mag_example_and_mistakes(self):
        r = subprocess.run([XPMIP, "check-config", "--role", "mag", os.path.join(EXAMPLES, "mag.yaml")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(check(MAG_BASE, "mag")[0], 0, check(MAG_BASE, "mag")[1])
        self.refused(MAG_BASE.replace("lma: 2001:db8:ffff::1", "lma: 192.0.2.1"), 3,
                     r"mag\.lma: 192\.0\.2\.1 has no proxy care-of address of its family", "mag")
        self.refused(MAG_BASE.replace("interface: acc0}", "interface: wan0}"), 8,
                     r"mobile_nodes\[0\]\.interface: 'wan0' is not an access interface", "mag")
        self.refused(MAG_BASE + '  - {id: mn2@example, mac: "02:00:00:00:01:01", interface: acc0}\n', 9,
                     r"mobile_nodes\[1\]\.mac: 02:00:00:00:01:01 is already mobile node 'mn1@example'", "mag")
        self.refused(MAG_BASE.replace("lma: 2001:db8:ffff::1", "lma: 2001:db8:ffff::1\n  tlv_header: true"), 4,
                     r"mag\.tlv_header: needs an IPv4 LMA address", "mag")
        self.refused(MAG_BASE.replace("kind: tunnel", "kind: core"), 5,
                     r"interfaces: needs a tunnel interface", "mag")
        self.refused(MAG_BASE.replace("mac: \"02:00:00:00:01:01\"", "mac: \"02:00:00:00:01\""), 8,
                     r"mobile_nodes\[0\]\.mac: '02:00:00:00:01' is not a MAC address", "mag")

    # --- RFC 8278: labels, steering rules, WAN paths ------------------------------------------

    STEERING = """labels:
  - {name: red, id: 1, weight: 3}
  - {name: blue, id: 2}
steering:
  - {name: web, proto: tcp, remote_ports: 80, labels: [red, blue]}
  - {name: spread, proto: udp, remote_ports: 5000-5009, distribute: per-packet, labels: [red, 2]}
  - {name: cn, remote_prefix: 198.51.100.0/24, dscp: 46, labels: [blue], strict: true}
"""

    def test_steering_block_and_multipath_switches_are_valid(self):
        self.assertEqual(check(BASE + self.STEERING)[0], 0, check(BASE + self.STEERING)[1])
        self.assertIn("multipath on, 3 steering rule(s)", check(BASE + self.STEERING)[1])
        self.assertEqual(check(MAG_BASE + self.STEERING, "mag")[0], 0, check(MAG_BASE + self.STEERING, "mag")[1])
        self.assertEqual(check(BASE.replace("  addresses: [2001", "  multipath: false\n  addresses: [2001") +
                               "  - {id: one@example, realm: 1, multipath: false}\n")[0], 0)

    def test_steering_mistakes_name_the_rule_and_key(self):
        n = BASE.count("\n")   # the line of `labels:` is n + 1
        st = self.STEERING
        self.refused(BASE + st.replace("id: 2}", "id: 1}"), n + 3, r"labels\[1\]\.id: label id 1 is used twice")
        self.refused(BASE + st.replace("name: blue, id: 2", "name: red, id: 2"), n + 3,
                     r"labels\[1\]\.name: label 'red' is defined twice")
        self.refused(BASE + st.replace("id: 2}", "id: 0}"), n + 3, r"labels\[1\]\.id: 0 is out of range")
        self.refused(BASE + st.replace("labels: [red, blue]", "labels: [red, green]"), n + 5,
                     r"steering\[0\]\.labels: 'green' is not a label of `labels` nor a number 1\.\.255")
        self.refused(BASE + st.replace("proto: tcp", "proto: sctpx"), n + 5,
                     r"steering\[0\]\.proto: 'sctpx' is not tcp, udp, icmp, icmpv6 or a protocol number")
        self.refused(BASE + st.replace("remote_ports: 80", "remote_ports: 90-80"), n + 5,
                     r"steering\[0\]\.remote_ports: '90-80' is not a port or a port range")
        self.refused(BASE + st.replace("proto: tcp, remote_ports", "remote_ports"), n + 5,
                     r"steering\[0\]\.remote_ports: ports need proto tcp or udp")
        self.refused(BASE + st.replace("distribute: per-packet", "distribute: round-robin"), n + 6,
                     r"steering\[1\]\.distribute: 'round-robin' is not one of: per-flow, per-packet")
        self.refused(BASE + st.replace("198.51.100.0/24", "198.51.100.0/33"), n + 7, r"steering\[2\]\.remote_prefix: ")
        self.refused(BASE + st.replace("labels: [blue], strict", "labels: [], strict"), n + 7,
                     r"steering\[2\]\.labels: a per-flow rule needs labels")
        self.refused(BASE + st.replace("labels: [red, blue]", "labels: [red, blue, 3, 4, 5]"), n + 5,
                     r"steering\[0\]\.labels: 5 labels: at most 4")

    def test_mag_wan_paths_and_their_mistakes(self):
        wan = MAG_BASE.replace("  - {name: acc0, kind: access}",
                               "  - {name: wan1, kind: tunnel}\n  - {name: acc0, kind: access}") + self.STEERING + \
            "wan:\n  - {interface: wan0, address: 2001:db8:ffff::10, label: red}\n" \
            "  - {interface: wan1, address: 2001:db8:fffe::10, lma: 2001:db8:fffe::1, label: blue}\n"
        self.assertEqual(check(wan, "mag")[0], 0, check(wan, "mag")[1])
        n = wan.count("\n")   # the second path, the last line
        self.refused(wan.replace("interface: wan1, address", "interface: acc0, address"), n,
                     r"wan\[1\]\.interface: 'acc0' is not a tunnel interface in interfaces", "mag")
        self.refused(wan.replace("interface: wan1, address", "interface: wan0, address"), n,
                     r"wan\[1\]\.interface: 'wan0' is listed twice", "mag")
        self.refused(wan.replace("2001:db8:fffe::10", "192.0.2.10"), n,
                     r"wan\[1\]\.address: 192\.0\.2\.10 and the LMA address 2001:db8:fffe::1 differ in family",
                     "mag")
        self.refused(wan.replace(", label: blue}", "}"), n,
                     r"wan\[1\]\.label: is required with several WAN interfaces", "mag")
        self.refused(wan.replace("label: blue}", "label: blue, bid: 1}"), n, r"wan\[1\]\.bid: Binding-Id 1 is used twice",
                     "mag")
        self.refused(wan.replace("label: blue}", "label: blue, bid: 255}"), n, r"wan\[1\]\.bid: 255 is out of range",
                     "mag")
        # Without mag.addresses the WAN list gives the proxy CoAs.
        self.assertEqual(check(wan.replace("  addresses: [2001:db8:ffff::10]\n", ""), "mag")[0], 0)

    def test_the_role_comes_from_the_file_and_role_overrides_it(self):
        def run(*args):
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
                f.write(args[-1])
            try:
                r = subprocess.run([XPMIP, "check-config", *args[:-1], f.name], capture_output=True, text=True)
                return r.returncode, (r.stdout + r.stderr).replace(f.name, "FILE")
            finally:
                os.unlink(f.name)
        self.assertEqual(run(MAG_BASE), (0, run(MAG_BASE)[1]))
        self.assertIn("valid MAG configuration", run(MAG_BASE)[1])
        self.assertIn("valid LMA configuration", run(BASE)[1])
        rc, out = run("--role", "lma", MAG_BASE)   # --role still decides
        self.assertEqual(rc, 2, out)
        self.assertIn("lma: is required", out)
        rc, out = run("instance: x\n")
        self.assertEqual(rc, 2, out)
        self.assertIn("FILE: has neither an `lma:` nor a `mag:` section: cannot tell its role (use --role lma|mag)",
                      out)
        rc, out = run(BASE + MAG_BASE)
        self.assertEqual(rc, 2, out)
        self.assertIn("has both an `lma:` and a `mag:` section", out)

    def test_version_names_the_release_and_the_git_commit(self):
        r = subprocess.run([XPMIP, "--version"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^xpmip \d+\.\d+\.\d+ \(git ([0-9a-f]{7,40}(-dirty)?|unknown .*)\)$")
        top = os.path.join(EXAMPLES, "..")
        head = subprocess.run(["git", "-C", top, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            self.assertIn(head.stdout.strip(), r.stdout, "the commit the binary was built from")

    def test_yaml_syntax_error_names_the_line(self):
        rc, out = check(BASE + "peers: [unclosed\n")
        self.assertEqual(rc, 2)
        self.assertRegex(out, r"FILE:1[34]: ")


if __name__ == "__main__":
    XPMIP = os.environ["XPMIP_BIN"]
    unittest.main(verbosity=2)
