#include "lab/network.hpp"

#include "lab/system.hpp"
#include "lab/topology.hpp"

#include "xdp_pass.skel.h"

#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <nlohmann/json.hpp>

#include <cstring>

namespace xpmip::lab {

namespace {

void ip(const std::string& ns, std::vector<std::string> args) {
    std::vector<std::string> argv{"ip"};
    if (!ns.empty()) {
        argv.push_back("-n");
        argv.push_back(ns);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    run(argv);
}

// bpf/xdp_pass.bpf.c, loaded once from the skeleton built into this binary and attached in
// native (driver) mode through netlink: the attachment stays when we exit, like
// `ip link set dev X xdpdrv obj xdp_pass.bpf.o sec xdp`, and goes with the interface.
class XdpPass {
public:
    XdpPass() : skel_(xdp_pass__open_and_load()) {
        if (!skel_) {
            throw LabError(fmt::format("loading the xdp_pass program: {}", std::strerror(errno)));
        }
    }
    ~XdpPass() { xdp_pass__destroy(skel_); }
    XdpPass(const XdpPass&) = delete;
    XdpPass& operator=(const XdpPass&) = delete;

    void attach(const std::string& ns, const std::string& ifname) const {
        NetnsScope in(ns);
        const unsigned ifindex = if_nametoindex(ifname.c_str());
        if (ifindex == 0) {
            throw LabError(fmt::format("xdp_pass: no interface {} in {}", ifname, ns));
        }
        int rc = bpf_xdp_attach(static_cast<int>(ifindex), bpf_program__fd(skel_->progs.xpmip_xdp_pass),
                                XDP_FLAGS_DRV_MODE, nullptr);
        if (rc < 0) {
            throw LabError(fmt::format("attaching xdp_pass (native XDP) to {} in {}: {}", ifname, ns, std::strerror(-rc)));
        }
    }

private:
    xdp_pass* skel_;
};

void veth(const std::string& ns_a, const std::string& a, const std::string& ns_b, const std::string& b,
          const std::string& mac_a = "") {
    std::vector<std::string> args{"link", "add", a, "netns", ns_a};
    if (!mac_a.empty()) {
        args.insert(args.end(), {"address", mac_a});
    }
    args.insert(args.end(), {"type", "veth", "peer", "name", b, "netns", ns_b});
    ip("", args);
    ip(ns_a, {"link", "set", a, "up"});
    ip(ns_b, {"link", "set", b, "up"});
}

void ethtool_off(const std::string& ns, const std::string& ifname, const std::string& feature) {
    run({"ethtool", "-K", ifname, feature, "off"}, RunOptions{.netns = ns});
}

void create_namespace(const std::string& ns) {
    run({"ip", "netns", "add", ns});
    ip(ns, {"link", "set", "lo", "up"});
    NetnsScope in(ns);
    // Before any link exists, so every link inherits "default". No duplicate address detection:
    // addresses are usable at once (DAD would hold them "tentative" for a second).
    write_sysctl("net.ipv6.conf.all.accept_dad", "0");
    write_sysctl("net.ipv6.conf.default.accept_dad", "0");
    if (ns == kWanNs) {
        // Layer 2 only: no IPv6 chatter of its own on the transit links.
        write_sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        write_sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    } else if (ns == kLmaNs || ns == kMagNs) {
        // bpf_fib_lookup() answers "forwarding disabled" otherwise.
        write_sysctl("net.ipv4.ip_forward", "1");
        write_sysctl("net.ipv6.conf.all.forwarding", "1");
        write_sysctl("net.ipv6.conf.default.forwarding", "1");
    } else if (ns.rfind("xl-mn", 0) == 0) {
        // Addresses by hand for now (mobile_node.hpp): no SLAAC, no router solicitations.
        write_sysctl("net.ipv6.conf.all.accept_ra", "0");
        write_sysctl("net.ipv6.conf.default.accept_ra", "0");
    }
}

void build_wan_link(const XdpPass& xdp_pass, const WanLink& l) {
    veth(kMagNs, l.mag_if, kWanNs, l.mag_port);
    veth(kLmaNs, l.lma_if, kWanNs, l.lma_port);
    ip(kWanNs, {"link", "add", l.bridge, "type", "bridge"});
    for (const auto& port : {l.mag_port, l.lma_port}) {
        ip(kWanNs, {"link", "set", port, "master", l.bridge});
        // XDP_PASS: frames the gateways' XDP redirects into the link arrive at once. No GRO:
        // merged tunnel packets would be re-segmented toward the gateway as
        // CHECKSUM_PARTIAL, which XDP cannot complete.
        xdp_pass.attach(kWanNs, port);
        ethtool_off(kWanNs, port, "gro");
    }
    ip(kWanNs, {"link", "set", l.bridge, "up"});
    ip(kMagNs, {"addr", "add", l.mag4 + "/24", "dev", l.mag_if});
    ip(kMagNs, {"-6", "addr", "add", l.mag6 + "/64", "dev", l.mag_if});
    ip(kLmaNs, {"addr", "add", l.lma4 + "/24", "dev", l.lma_if});
    ip(kLmaNs, {"-6", "addr", "add", l.lma6 + "/64", "dev", l.lma_if});
    fmt::print("[lab] WAN link {}: MAG {} {} / {} -- {} in {} -- LMA {} {} / {}{}\n", l.bridge, l.mag_if, l.mag4,
               l.mag6, l.bridge, kWanNs, l.lma_if, l.lma4, l.lma6,
               fmt::format(" (label {})", l.label));
}

void build_correspondent_network(const XdpPass& xdp_pass, const Operator& op) {
    veth(kLmaNs, op.core_if, op.cn_ns, "eth0");
    ip(kLmaNs, {"addr", "add", op.core4 + "/24", "dev", op.core_if});
    ip(kLmaNs, {"-6", "addr", "add", op.core6 + "/64", "dev", op.core_if});
    ip(op.cn_ns, {"addr", "add", op.cn4 + "/24", "dev", "eth0"});
    ip(op.cn_ns, {"-6", "addr", "add", op.cn6 + "/64", "dev", "eth0"});
    ip(op.cn_ns, {"route", "add", "default", "via", op.core4});
    ip(op.cn_ns, {"-6", "route", "add", "default", "via", op.core6});
    // An end host on a veth: XDP_PASS (see above) and complete checksums (a veth hands
    // CHECKSUM_PARTIAL packets to the gateway's XDP, which cannot complete them).
    xdp_pass.attach(op.cn_ns, "eth0");
    ethtool_off(op.cn_ns, "eth0", "tx");
    fmt::print("[lab] {} (realm {}): LMA {} {} -- CN {} {} / {}\n", op.name, op.realm, op.core_if, op.core4,
               op.cn_ns, op.cn4, op.cn6);
}

// One access link per mobile node; the MN's interface has the MAC the MAG knows it by.
void build_access_links(const XdpPass& xdp_pass) {
    for (const auto& mn : mobile_nodes()) {
        veth(mn.ns, "eth0", kMagNs, mn.access_if, mn.mac);
        xdp_pass.attach(mn.ns, "eth0");
        ethtool_off(mn.ns, "eth0", "tx");
    }
    fmt::print("[lab] access links: {}\n", [] {
        std::vector<std::string> v;
        for (const auto& mn : mobile_nodes()) {
            v.push_back(fmt::format("{}-{} ({})", mn.access_if, mn.ns, mn.mac));
        }
        return fmt::format("{}", fmt::join(v, ", "));
    }());
}

} // namespace

void build_network() {
    require_program("ip", "iproute2");
    require_program("ethtool", "ethtool");
    const XdpPass xdp_pass;

    for (const auto& ns : lab_namespaces()) {
        create_namespace(ns);
    }
    fmt::print("[lab] namespaces: {}\n", fmt::join(lab_namespaces(), " "));

    // The WAN: each of the MAG's links reaches the LMA through a bridge in xl-wan, where tshark
    // sees the tunnel (frames our XDP redirects into a veth are invisible on both of its ends).
    for (const auto& l : wan_links()) {
        build_wan_link(xdp_pass, l);
    }

    // Each operator's correspondent network behind its own core interface of the LMA.
    for (const auto& op : operators()) {
        build_correspondent_network(xdp_pass, op);
    }

    build_access_links(xdp_pass);
}

std::vector<std::string> remove_namespaces() {
    std::vector<std::string> removed;
    auto names = lab_namespaces();
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
        if (!netns_exists(*it)) {
            continue;
        }
        run({"ip", "netns", "del", *it});
        if (netns_exists(*it)) {
            throw LabError(fmt::format("network namespace {} is still there after `ip netns del {}`", *it, *it));
        }
        removed.push_back(*it);
    }
    return removed;
}

std::string mag_link_local(const std::string& access_if) {
    auto r = run({"ip", "-j", "-6", "addr", "show", "dev", access_if, "scope", "link"}, RunOptions{.netns = kMagNs});
    auto j = nlohmann::json::parse(r.out.empty() ? "[]" : r.out);
    for (const auto& link : j) {
        for (const auto& a : link.value("addr_info", nlohmann::json::array())) {
            if (a.value("family", "") == "inet6" && a.value("scope", "") == "link") {
                return a.value("local", "");
            }
        }
    }
    throw LabError(fmt::format("the MAG's access interface {} (in {}) has no IPv6 link-local address", access_if,
                               kMagNs));
}

} // namespace xpmip::lab
