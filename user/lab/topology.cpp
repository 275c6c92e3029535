#include "lab/topology.hpp"

#include <fmt/format.h>

namespace xpmip::lab {

const std::vector<Operator>& operators() {
    static const std::vector<Operator> ops = {
        {"operator-a", 1, "coreA", "xl-cna", "10.0.0.0/16", 16, "10.0.0.1", false, "2001:db8:a::/48", "198.51.100.1",
         "2001:db8:ca::1", "198.51.100.10", "2001:db8:ca::10"},
        // Operator B names its own default router, to show that it comes from the LMA.
        {"operator-b", 2, "coreB", "xl-cnb", "10.0.0.0/16", 16, "10.0.255.254", true, "2001:db8:b::/48",
         "198.51.100.1", "2001:db8:cb::1", "198.51.100.10", "2001:db8:cb::10"},
    };
    return ops;
}

const std::vector<MobileNode>& mobile_nodes() {
    static const std::vector<MobileNode> mns = [] {
        const auto& ops = operators();
        std::vector<MobileNode> v;
        auto add = [&](int i, const Operator& op, const char* mac, std::optional<std::string> hoa) {
            v.push_back(MobileNode{i, fmt::format("mn{}", i), fmt::format("xl-mn{}", i),
                                   fmt::format("mn{}@{}.example", i, op.name), mac, fmt::format("acc{}", i), &op,
                                   std::move(hoa)});
        };
        // The same home address in both realms (RFC 5845 Figure 1: overlapping private space).
        add(1, ops[0], "02:00:00:00:0a:01", "10.0.0.10");
        add(2, ops[0], "02:00:00:00:0a:02", std::nullopt);
        add(3, ops[1], "02:00:00:00:0b:03", "10.0.0.10");
        add(4, ops[1], "02:00:00:00:0b:04", std::nullopt);
        return v;
    }();
    return mns;
}

const std::vector<WanLink>& wan_links() {
    static const std::vector<WanLink> links = {
        {"wan0", "tun0", "br0", "m0", "l0", "192.0.2.10", "192.0.2.1", "2001:db8:ffff::10", "2001:db8:ffff::1", "red",
         1, 3},
        {"wan1", "tun1", "br1", "m1", "l1", "203.0.113.10", "203.0.113.1", "2001:db8:fffe::10", "2001:db8:fffe::1",
         "blue", 2, 1},
    };
    return links;
}

std::vector<std::string> lab_namespaces() {
    std::vector<std::string> v{kLmaNs, kMagNs, kWanNs};
    for (const auto& op : operators()) {
        v.push_back(op.cn_ns);
    }
    for (const auto& mn : mobile_nodes()) {
        v.push_back(mn.ns);
    }
    return v;
}

std::string steering_yaml() {
    std::string y = "labels:                  # RFC 8278 If-Labels of the MAG's WAN links\n";
    for (const auto& l : wan_links()) {
        y += fmt::format("  - {{name: {}, id: {}, weight: {}}}\n", l.label, l.label_id, l.weight);
    }
    y += "steering:                # the same on both agents: a flow takes the same path both ways\n"
         "  - {name: web, proto: tcp, remote_ports: 80, labels: [red, blue]}\n"
         "  - {name: spread, proto: udp, remote_ports: 5001, distribute: per-packet, labels: [red, blue]}\n"
         "  - {name: rest, labels: [blue, red]}\n";
    return y;
}

std::string lma_config_yaml() {
    const auto& wan = wan_links()[0];
    std::string y = fmt::format(
        "# Written by `xpmip lab up`: the LMA of RFC 5845 Figure 1, two operators whose mobile nodes'\n"
        "# IPv4 home addresses overlap (both realms use 10.0.0.0/16); GRE keys keep them apart.\n"
        "instance: xl-lma\n"
        "state_directory: {}/lma-state   # the binding journal (`xpmip lab down` removes it)\n"
        "log_level: info\n"
        "lma:\n"
        "  addresses: [\"{}\", {}, {}]   # the last: its address on the BLUE link\n"
        "  gre: keys-required     # RFC 5845 §5.1: overlapping private addresses need keys\n"
        "  multipath: true        # RFC 8278 MAG multipath bindings\n"
        "interfaces:\n",
        kStateDir.string(), wan.lma6, wan.lma4, wan_links()[1].lma4);
    for (const auto& l : wan_links()) {
        y += fmt::format("  - {{name: {}, kind: tunnel}}\n", l.lma_if);
    }
    for (const auto& op : operators()) {
        y += fmt::format("  - {{name: {}, kind: core, realm: {}}}\n", op.core_if, op.realm);
    }
    y += "limits:\n  sessions: 1024\nrealms:\n";
    for (const auto& op : operators()) {
        y += fmt::format("  - id: {}\n    name: {}\n    interface: {}\n    ipv4_pool: {}\n", op.realm, op.name,
                         op.core_if, op.ipv4_pool);
        if (op.router_configured) {
            y += fmt::format("    ipv4_default_router: {}\n", op.ipv4_router);
        }
        y += fmt::format("    ipv6_pool: \"{}\"\n    hnp_length: 64\n    gre: keys-required\n", op.ipv6_pool);
    }
    y += steering_yaml();
    y += fmt::format("peers:\n  - name: xl-mag\n    addresses: [{}, \"{}\", {}]\nmobile_nodes:\n", wan.mag4, wan.mag6,
                     wan_links()[1].mag4);
    for (const auto& mn : mobile_nodes()) {
        y += fmt::format("  - {{id: {}, realm: {}{}}}\n", mn.id, mn.op->realm,
                         mn.static_hoa ? ", ipv4_home_address: " + *mn.static_hoa : "");
    }
    return y;
}

std::string mag_config_yaml() {
    const auto& wan = wan_links()[0];
    std::string y = fmt::format(
        "# Written by `xpmip lab up`: one MAG serving both operators' mobile nodes, one access link each.\n"
        "instance: xl-mag\n"
        "state_directory: {}/mag-state   # the binding update list journal (`xpmip lab down` removes it)\n"
        "log_level: info\n"
        "mag:\n"
        "  lma: {}                   # IPv4-LMAA: PBUs over UDP 5436 (RFC 5844), GRE over IPv4\n"
        "  gre: keys                 # the GRE Key option with a downlink key (RFC 5845 §3.1)\n"
        "  identifier: xl-mag.lab.example   # MAG Identifier option (RFC 8278 §4.2)\n"
        "interfaces:\n",
        kStateDir.string(), wan.lma4);
    for (const auto& l : wan_links()) {
        y += fmt::format("  - {{name: {}, kind: tunnel}}\n", l.mag_if);
    }
    // The realm of an access link is the realm of the MAG's sessions on it: without it, mn1's
    // and mn3's 10.0.0.10 would be one address of realm 0 and the second session refused.
    for (const auto& mn : mobile_nodes()) {
        y += fmt::format("  - {{name: {}, kind: access, realm: {}}}\n", mn.access_if, mn.op->realm);
    }
    y += "wan:                         # RFC 8278: one proxy CoA and binding per WAN link\n";
    for (const auto& l : wan_links()) {
        y += fmt::format("  - {{interface: {}, address: {}, lma: {}, label: {}}}\n", l.mag_if, l.mag4, l.lma4, l.label);
    }
    y += steering_yaml();
    y += "limits:\n  sessions: 1024\nmobile_nodes:\n";
    for (const auto& mn : mobile_nodes()) {
        y += fmt::format("  - {{id: {}, mac: \"{}\", interface: {}}}\n", mn.id, mn.mac, mn.access_if);
    }
    return y;
}

} // namespace xpmip::lab
