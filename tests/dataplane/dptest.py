"""Test harness for the data plane: network namespaces, veth links, data plane instances driven
through xpmip-dp, and BPF_PROG_TEST_RUN of the attached programs.

Everything a test creates is registered with a World and removed when it closes, even when the
test fails: namespaces (named with the test's pid, so parallel runs do not collide) and pinned
instances under /sys/fs/bpf/xpmip/.

Data plane processes run through `nsenter --net` (not `ip netns exec`, which remounts /sys and
hides bpffs); end hosts run through `ip netns exec`.
"""
import json
import os
import subprocess
import time

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = range(5)
TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7

TOOL = os.environ.get("XPMIP_DP", "")
# bpf/xdp_pass.bpf.c, built next to the tool: build/tools/xpmip-dp -> build/bpf/xdp_pass.bpf.o
XDP_PASS_OBJ = os.environ.get("XPMIP_XDP_PASS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(TOOL or "."))), "bpf", "xdp_pass.bpf.o")

# bench/xpmip-bench (its AF_PACKET generator), built next to the tool: build/bench/xpmip-bench
BENCH = os.environ.get("XPMIP_BENCH") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(TOOL or "."))), "bench", "xpmip-bench")


def sh(*cmd, check=True, input=None, timeout=60):
    r = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


class Netns:
    def __init__(self, world, name):
        self.world = world
        self.name = name
        sh("ip", "netns", "add", name)
        self.ip("link set lo up")

    def run(self, *cmd, check=True, input=None, timeout=60):
        """Run a command in the namespace (fresh mount namespace: for end hosts, tshark...)."""
        return sh("ip", "netns", "exec", self.name, *cmd, check=check, input=input, timeout=timeout)

    def enter(self, *cmd, check=True, input=None, timeout=60):
        """Run a command in the namespace's network only (keeps bpffs visible)."""
        return sh("nsenter", f"--net=/run/netns/{self.name}", *cmd, check=check, input=input, timeout=timeout)

    def popen(self, *cmd, **kw):
        """Start a process in the namespace; the World kills it when it closes (a leftover child
        would keep the test runner's output pipe open)."""
        p = subprocess.Popen(["ip", "netns", "exec", self.name, *cmd], **kw)
        self.world.processes.append(p)
        return p

    def ip(self, args):
        return self.run("ip", *args.split())

    def sysctl(self, *settings):
        self.run("sysctl", "-qw", *settings)

    def quiet(self):
        """A namespace that only holds the far ends of veths: no IPv6 on them, so they send no
        router solicitations, DAD probes or MLD reports, which would reach the XDP program on the
        near end and move its counters while a test reads them. Call before adding links."""
        self.sysctl("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")

    def forwarding(self):
        self.sysctl("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                    "net.ipv6.conf.default.forwarding=1")

    def end_host(self, ifname):
        """A veth end host: an XDP_PASS program, without which a veth delivers the frames our
        XDP sends into it (XDP_REDIRECT) or back out of it (XDP_TX, e.g. ICMP errors) late;
        and TX checksum offload off, since a veth hands CHECKSUM_PARTIAL packets to XDP,
        which cannot complete them (real NICs put complete checksums on the wire)."""
        self.run("ip", "link", "set", "dev", ifname, "xdpdrv", "obj", XDP_PASS_OBJ, "sec", "xdp")
        self.run("ethtool", "-K", ifname, "tx", "off")

    def ifindex(self, ifname):
        out = self.run("cat", f"/sys/class/net/{ifname}/ifindex").stdout
        return int(out)

    def mac(self, ifname):
        return self.run("cat", f"/sys/class/net/{ifname}/address").stdout.strip()


# Loading verifies every program: 1-2 s on the host, ~15 s in a VM under TCG, more on a busy
# machine (the VM suite runs these tests too).
LOAD_TIMEOUT = 300


class Instance:
    """A data plane instance (pinned under /sys/fs/bpf/xpmip/<name>) in a namespace."""

    def __init__(self, world, ns, name, role, attach, sessions=1024, spread_cpus=None):
        self.world = world
        self.ns = ns
        self.name = name
        self.role = role
        self.load_args = ["load", "--role", role, "--sessions", str(sessions)]
        for a in attach:
            self.load_args += ["--attach", a]
        self.reload(spread_cpus)

    def reload(self, spread_cpus=None, route_ttl_ms=None):
        """Load (again: the pinned maps and sessions stay), spreading tunnel ingress over
        `spread_cpus` ("0,1", "all"; None: not at all), cached routes serving for `route_ttl_ms`
        (None: the default)."""
        ttl = ["--route-cache-ttl-ms", str(route_ttl_ms)] if route_ttl_ms else []
        self.dp(*self.load_args, "--spread-cpus", spread_cpus or "none", *ttl, timeout=LOAD_TIMEOUT)

    def dp(self, *args, input=None, check=True, timeout=60):
        return self.ns.enter(TOOL, "-i", self.name, *args, input=input, check=check, timeout=timeout)

    def add_session(self, session):
        self.dp("session", "add", "-", input=json.dumps(session))

    def refresh_next_hops(self):
        """Resolve the next-hop cache as the agent does (README "Next hops"): without it every
        encapsulation falls back to bpf_fib_lookup."""
        return json.loads(self.dp("nexthops", "--refresh").stdout)

    def try_add_session(self, session):
        return self.dp("session", "add", "-", input=json.dumps(session), check=False)

    def del_session(self, sid):
        self.dp("session", "del", str(sid))

    def sessions(self):
        return json.loads(self.dp("session", "show").stdout)

    def session(self, sid):
        for s in self.sessions():
            if s["id"] == sid:
                return s
        return None

    def set_path(self, sid, bid, up):
        self.dp("path", str(sid), str(bid), "up" if up else "down")

    def set_policy(self, pid, policy):
        self.dp("policy", "set", str(pid), "-", input=json.dumps(policy))

    def stats(self, reset=False):
        return json.loads(self.dp("stats", *(["--reset"] if reset else [])).stdout)

    def nonzero_stats(self, reset=True):
        return {k: v for k, v in self.stats(reset).items() if v}

    def run(self, ifname, hook, frame: bytes, repeat=1, cpu=None):
        """BPF_PROG_TEST_RUN (on CPU `cpu` when given): (retval, output bytes)."""
        pin = ["taskset", "-c", str(cpu)] if cpu is not None else []
        out = json.loads(self.ns.enter(*pin, TOOL, "run", ifname, hook, frame.hex(), "--repeat",
                                       str(repeat)).stdout)
        return out["retval"], bytes.fromhex(out["output"])

    def unload(self):
        self.ns.enter(TOOL, "-i", self.name, "unload", check=False)


class World:
    """Owns every namespace and instance of a test; close() removes them all."""

    def __init__(self, tag):
        self.prefix = f"{tag}{os.getpid() % 100000}"
        self.namespaces = []
        self.instances = []
        self.processes = []

    def netns(self, short):
        ns = Netns(self, f"{self.prefix}-{short}")
        self.namespaces.append(ns)
        return ns

    def veth(self, a, a_name, b, b_name, a_mac=None, b_mac=None, mtu=None):
        sh("ip", "link", "add", a_name, "netns", a.name, "type", "veth", "peer", "name", b_name, "netns", b.name)
        for ns, name, mac in ((a, a_name, a_mac), (b, b_name, b_mac)):
            if mac:
                ns.ip(f"link set {name} address {mac}")
            if mtu:
                ns.ip(f"link set {name} mtu {mtu}")
            ns.ip(f"link set {name} up")

    def instance(self, ns, short, role, attach, **kw):
        inst = Instance(self, ns, f"{self.prefix}-{short}", role, attach, **kw)
        self.instances.append(inst)
        return inst

    def close(self):
        for p in self.processes:
            if p.poll() is None:
                p.kill()
            p.wait()
            for stream in (p.stdout, p.stderr, p.stdin):
                if stream:
                    stream.close()
        self.processes.clear()
        for inst in self.instances:
            inst.unload()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns.name, check=False)
        self.instances.clear()
        self.namespaces.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def loss_report(agents, namespaces):
    """Where a lost packet may have gone, for a failure message: every non-zero data-plane
    counter of each (namespace, instance) agent (`xpmip show stats`) and every interface drop
    counter in `namespaces` (`ip -s link`)."""
    xpmip = os.environ.get("XPMIP_BIN", "xpmip")
    lines = []
    for ns, instance in agents:
        r = ns.enter(xpmip, "show", "stats", "-i", instance, "--json", check=False)
        try:
            stats = json.loads(r.stdout)
            lines.append(f"{instance}: " + ", ".join(f"{k} {v}" for k, v in stats.items() if v))
        except ValueError:
            lines.append(f"{instance}: no stats ({r.stderr.strip()})")
    for ns in namespaces:
        r = ns.run("ip", "-s", "-j", "link", check=False)
        try:
            for link in json.loads(r.stdout):
                st = link.get("stats64", {})
                drops = {f"{d}_{k}": st[d][k] for d in ("rx", "tx") for k in ("dropped", "errors")
                         if st.get(d, {}).get(k)}
                if drops:
                    lines.append(f"{ns.name} {link['ifname']}: {drops}")
        except ValueError:
            pass
    return "; ".join(lines) or "no drop counted anywhere"


def wait_for(predicate, timeout=5.0, interval=0.05):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
