"""Control plane: registrations per second through the real LMA agent, and memory per session.

    [MAG namespace: xpmip-loadgen, CPU 1] --veth-- tun0 [LMA namespace: xpmip lma, CPU 0] core0 --veth-- [quiet]
     192.0.2.10-13 (4 MAGs)                        192.0.2.1

For N = 10 k, 100 k and 1 M, a fresh `xpmip lma` (data plane session limit N, log level warn) is
pinned to CPU 0 and the load generator (`xpmip-loadgen register`, pinned to CPU 1) registers N
mobile nodes at it as 4 MAGs over IPv4/UDP 5436 (RFC 5844), 64 PBUs outstanding. Each PBU asks
for an IPv6 home network prefix, an IPv4 home address and GRE keys, so each accepted
registration is a full session: HNP, HoA and uplink key in the data plane, as in the sessions
benchmark. The LMA authorizes the MNs by their NAI domain (`mobile_node_domains`). The generator
checks every PBA against its PBU (sequence number, MN-ID, and for status 0 the prefix, address
and key asked for).

- registrations/s: accepted PBAs over the time from the first PBU to the last PBA (wall clock);
  also the LMA's own CPU time (user + system, /proc/PID/task/*/schedstat) per registration, which
  other programs on the machine do not inflate as much; sampled every second with the generator's
  progress, it shows the cost of a registration against the bindings already held. The time the
  LMA was runnable but waited for its CPU (other programs on it) is reported beside it.
- refresh, one at a time: once N are registered, P of them re-register (Timestamp option, no
  change: no data plane write) with a single PBU outstanding: the round trip of one PBU at an
  LMA that holds N bindings.
- one Prometheus scrape: the time the LMA takes to answer /metrics with N sessions, wall clock
  and its CPU time (all its threads: the endpoint has its own, README "Metrics").
- PBA latency under scrapes: once N are registered, L more MNs register (64 outstanding) twice,
  once alone and once while a client scrapes /metrics every second; the PBA round trip's median
  and p99 of each, side by side (the scrapes must not move them).
- bad input: then L malformed PBUs (MN-ID Subtype 0), L PBUs for MNs nobody authorized (153) and
  L from an address that is no peer's (154): the LMA's CPU per message against a registration's,
  and its RSS before and after (bad input must not grow it).
- subscribers: 1 M profiles imported into the subscriber store (`xpmip subscribers import`, a
  CSV), then an LMA started on it: its start-up time (to its control socket) and RSS, and 10 k MNs
  registered by their stored profiles (CPU per registration against the domain-authorized runs).
- memory per session: the instance's map memory as bpftool reports it (bytes_memlock, as in the
  sessions benchmark) over N, and the agent's RSS (VmRSS) after the registrations less before,
  over N.

Baselines in the same run: the rate at 10 k for 100 k and 1 M, and an echo responder
(`xpmip-loadgen echo`: the same socket and codec on the same CPU, answering each PBU with the
PBA an LMA would send, without registration logic or data plane) driven by the same generator,
which shows what the generator and the sockets can carry.

Checks of what was measured: every PBA status 0 and complete, none timed out; the data plane
holds N sessions, N IPv4 routes, N IPv6 routes and N uplink keys (counted by walking the maps);
the agent reports N bindings (its Prometheus endpoint); every refresh accepted; the LMA exits 0
on SIGTERM and leaves no pins.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from common import Checks, Tools, dptest, enter, log, run_json
from sessions import map_memory

LMA4, MAGS = "192.0.2.1", ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"]
ROGUE_MAG = "192.0.2.20"   # on the MAGs' link, in no peer's addresses
DOMAIN = "bench.example"
WINDOW = 64
LMA_CPU, GENERATOR_CPU = 0, 1
METRICS_PORT = 9431


def config(instance, sessions, state, store=None, journal=False):
    """The LMA's configuration; `state`: its state directory (restart counter, binding journal)."""
    mags = "\n".join(f"  - {{name: mag{i}, addresses: [{a}]}}" for i, a in enumerate(MAGS))
    return f"""# written by bench/registrations.py
instance: {instance}
{f"subscriber_store: {store}" if store else ""}
state_directory: {state}
journal: {str(journal).lower()}
log_level: warn                # info logs a line per PBU
metrics: 127.0.0.1:{METRICS_PORT}
lma:
  addresses: [{LMA4}]
  gre: allowed
interfaces:
  - {{name: tun0, kind: tunnel}}
  - {{name: core0, kind: core, realm: 1}}
limits: {{sessions: {sessions}}}
timers:
  timestamp_validity_window: 5  # the refresh PBUs carry timestamps; a busy machine delays them
  heartbeat_interval: 0         # (xpmip-loadgen answers no heartbeats)
realms:                         # room for 2 M IPv4 home addresses and 16 M /64 prefixes
  - {{id: 1, name: bench, interface: core0, ipv4_pool: 10.0.0.0/11, ipv6_pool: "2001:db8::/40"}}
peers:
{mags}
mobile_node_domains:
  - {{domain: {DOMAIN}, realm: 1}}
"""


def proc_status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024   # kB
    raise RuntimeError(f"/proc/{pid}/status has no {field}")


def sched_seconds(pid):
    """(on the CPU, runnable but waiting for a CPU) so far, in seconds, all threads of a process:
    the scheduler's counts in /proc/PID/task/TID/schedstat (ns). The wait is the time other
    programs took from it."""
    run = wait = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            fields = f.read().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9


def cpu_seconds(pid):
    """CPU time of a process so far, user and system, all its threads."""
    return sched_seconds(pid)[0]


def loop_cpu_seconds(pid):
    """CPU time of a process's main thread (the agent's event loop) so far."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


class Pins:
    """A pinned instance the World unloads when it closes (an LMA killed before its SIGTERM)."""

    def __init__(self, ns, name):
        self.ns, self.name = ns, name

    def unload(self):
        self.ns.enter(dptest.TOOL, "-i", self.name, "unload", check=False)


class Rig:
    def __init__(self, world, tools):
        self.world, self.tools = world, tools
        self.lma_ns, self.mag_ns = world.netns("lma"), world.netns("mag")
        core = world.netns("core")
        core.quiet()
        world.veth(self.lma_ns, "tun0", self.mag_ns, "wan0")
        world.veth(self.lma_ns, "core0", core, "p-core0")
        self.lma_ns.ip(f"addr add {LMA4}/24 dev tun0")
        self.lma_ns.ip("addr add 198.51.100.1/24 dev core0")
        for a in MAGS + [ROGUE_MAG]:
            self.mag_ns.ip(f"addr add {a}/24 dev wan0")
        mac = self.mag_ns.mac("wan0")
        for a in MAGS + [ROGUE_MAG]:   # the data plane forwards only to known next hops
            self.lma_ns.ip(f"neigh replace {a} lladdr {mac} dev tun0 nud permanent")

    def loadgen(self, *args, timeout=3600, mags=MAGS):
        return run_json(enter(self.mag_ns, "taskset", "-c", str(GENERATOR_CPU), self.tools.loadgen, "register",
                              "--lma", LMA4, *[x for a in mags for x in ("--mag", a)], *args), timeout=timeout)

    def start(self, argv, output=subprocess.PIPE):
        """A process in the LMA namespace on LMA_CPU (nsenter and taskset exec it: same pid)."""
        p = subprocess.Popen(enter(self.lma_ns, "taskset", "-c", str(LMA_CPU), *argv), stdout=output,
                             stderr=subprocess.STDOUT if output != subprocess.PIPE else subprocess.PIPE, text=True)
        self.world.processes.append(p)
        return p

    def metrics(self):
        """Each family's samples summed, and those of xpmip_bindings by state."""
        code = (f"import time,urllib.request;t=time.time();b=urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}"
                "/metrics',timeout=600).read().decode();print(time.time()-t);print(b)")
        elapsed, out = self.lma_ns.enter("/usr/bin/python3", "-c", code, timeout=900).stdout.split("\n", 1)
        values = {"bytes": len(out), "seconds": float(elapsed)}   # the request alone, not the client's start
        for line in out.splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                name = series.split("{", 1)[0]
                values[name] = values.get(name, 0.0) + float(value)
                if name == "xpmip_bindings":
                    state = series.split('state="', 1)[1].split('"', 1)[0]
                    values[f"xpmip_bindings.{state}"] = values.get(f"xpmip_bindings.{state}", 0.0) + float(value)
        return values

    def scraper(self, seconds):
        """A client in the LMA's namespace that scrapes /metrics every second for `seconds`."""
        code = (f"import time,urllib.request\nend=time.time()+{seconds}\nn=0\nwhile time.time()<end:\n"
                f"  t=time.time();urllib.request.urlopen('http://127.0.0.1:{METRICS_PORT}/metrics',timeout=60).read()"
                "\n  n+=1;time.sleep(max(0,1-(time.time()-t)))\nprint(n)")
        return subprocess.Popen(enter(self.lma_ns, "taskset", "-c", str(GENERATOR_CPU), "/usr/bin/python3", "-c", code),
                                stdout=subprocess.PIPE, text=True)


def stop(p):
    """SIGTERM, then (exit status, stdout, stderr)."""
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out, err


def echo_baseline(rig, checks, count):
    log(f"registrations: echo responder baseline, {count} PBUs")
    p = rig.start([rig.tools.loadgen, "echo", "--listen", LMA4])
    if "answering" not in p.stderr.readline():   # printed once its socket is bound
        raise RuntimeError(f"the echo responder did not start: {p.stderr.read().strip()}")
    cpu0 = cpu_seconds(p.pid)
    r = rig.loadgen("--count", str(count), "--window", str(WINDOW))
    cpu = cpu_seconds(p.pid) - cpu0
    code, out, _ = stop(p)
    rig.world.processes.remove(p)
    answered = json.loads(out)["answered"] if code == 0 else None
    checks.check("registrations.echo", r["accepted"] == count == answered and r["timed_out"] == 0,
                 f"{r['accepted']} of {count} PBAs accepted, the responder answered {answered}, "
                 f"{r['timed_out']} timed out, exit {code}")
    return {"count": count, "per_second": r["per_second"], "seconds": r["seconds"], "responder_cpu_seconds": cpu,
            "cpu_us_per_pba": cpu / count * 1e6, "rtt_us": r["rtt_us"]}


def latency_under_scrapes(rig, checks, n, extra):
    """PBA round trips of `extra` new MNs at an LMA holding n, without and with a scrape a second."""
    out = {}
    for scraping, first in ((False, n), (True, n + extra)):
        scraper = rig.scraper(3600) if scraping else None
        r = rig.loadgen("--count", str(extra), "--first", str(first), "--window", str(WINDOW),
                        "--nai", f"mn{{}}@{DOMAIN}")
        scrapes = None
        if scraper:
            scraper.terminate()
            scrapes = scraper.communicate()[0]
        key = "scraping" if scraping else "alone"
        out[key] = {"rtt_us": r["rtt_us"], "per_second": r["per_second"], "accepted": r["accepted"],
                    "seconds": r["seconds"]}
        checks.check(f"registrations.{n}.latency.{key}", r["accepted"] == extra and r["timed_out"] == 0,
                     f"{r['accepted']} of {extra} accepted, {r['timed_out']} timed out"
                     + (f" (the scraper was stopped after {r['seconds']:.0f} s)" if scrapes is not None else ""))
    return out


def bad_input(rig, checks, n, pid, count):
    """What `count` malformed PBUs, PBUs for unknown MNs and PBUs from an unauthorized MAG cost the
    LMA holding n bindings: its event loop's CPU per message (the metrics thread's pass over the
    maps, which the scrapes around each kind set off, is not theirs) against a registration's, and
    its RSS growth."""
    kinds = {
        "malformed": dict(args=["--malformed"], mags=MAGS),
        "unknown_mn": dict(args=["--nai", "nobody{}@unknown.example"], mags=MAGS),
        "unauthorized_mag": dict(args=[], mags=[ROGUE_MAG]),
    }
    out = {}
    rss0 = proc_status(pid, "VmRSS")
    for name, k in kinds.items():
        before = rig.metrics()
        cpu0 = loop_cpu_seconds(pid)
        r = rig.loadgen("--count", str(count), "--window", str(WINDOW), "--first", str(10 * n), *k["args"],
                        mags=k["mags"])
        if name == "malformed":   # no answers to wait for: give the LMA a moment to read its socket
            time.sleep(2)
        cpu = loop_cpu_seconds(pid) - cpu0
        after = rig.metrics()
        if name == "malformed":
            handled = after.get("xpmip_signaling_malformed_total", 0) - before.get("xpmip_signaling_malformed_total", 0)
        else:
            handled = sum(v["count"] for v in r["statuses"].values())
        want = {"malformed": None, "unknown_mn": {"153": count}, "unauthorized_mag": {"154": count}}[name]
        statuses = {s: v["count"] for s, v in r["statuses"].items()}
        checks.check(f"registrations.{n}.bad_input.{name}",
                     handled == count == r["sent"] and (want is None or statuses == want),
                     f"{handled:.0f} of {count} handled, statuses {statuses}")
        out[name] = {"count": count, "handled": handled, "cpu_us_each": cpu / max(handled, 1) * 1e6}
    out["rss_growth"] = proc_status(pid, "VmRSS") - rss0
    return out


def measure(rig, checks, n, probe, extra, bad):
    name = f"{rig.world.prefix}-r{n}"
    sock = f"/run/xpmip/{name}.sock"
    pin_dir = f"/sys/fs/bpf/xpmip/{name}"
    state = tempfile.mkdtemp(prefix="xpmip-bench-state-")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"{name}-", delete=False) as f:
        f.write(config(name, n + 2 * extra, state))
    logfile = tempfile.TemporaryFile("w+")   # the LMA's log (warnings and errors only)
    pins = Pins(rig.lma_ns, name)
    rig.world.instances.append(pins)
    try:
        log(f"registrations: LMA with a session limit of {n}")
        p = rig.start([rig.tools.xpmip, "lma", "-c", f.name], output=logfile)
        if not dptest.wait_for(lambda: p.poll() is not None or os.path.exists(sock), timeout=120):
            raise RuntimeError(f"the LMA did not start within 120 s: {sock} is missing")
        if p.poll() is not None:
            logfile.seek(0)
            raise RuntimeError(f"the LMA exited ({p.returncode}): {logfile.read().strip()[-2000:]}")
        rss0, maps0 = proc_status(p.pid, "VmRSS"), map_memory(pin_dir)
        cpu0, wait0 = sched_seconds(p.pid)

        log(f"registrations: registering {n} MNs, {WINDOW} PBUs outstanding")
        r = rig.loadgen("--count", str(n), "--window", str(WINDOW), "--nai", f"mn{{}}@{DOMAIN}",
                        "--watch-pid", str(p.pid))
        (cpu1, wait1), rss1, maps1 = sched_seconds(p.pid), proc_status(p.pid, "VmRSS"), map_memory(pin_dir)
        census = run_json(enter(rig.lma_ns, rig.tools.bench, "census", "-i", name))

        log(f"registrations: {probe} refreshes one at a time")
        cpu2 = cpu_seconds(p.pid)
        refresh = rig.loadgen("--count", str(probe), "--window", "1", "--timestamps", "--nai", f"mn{{}}@{DOMAIN}")
        refresh_cpu = cpu_seconds(p.pid) - cpu2

        cpu3 = cpu_seconds(p.pid)
        metrics = rig.metrics()
        metrics_seconds, metrics_cpu = metrics["seconds"], cpu_seconds(p.pid) - cpu3
        log(f"registrations: {extra} more MNs twice, alone and with a scrape every second")
        latency = latency_under_scrapes(rig, checks, n, extra)
        log(f"registrations: {bad} each of malformed PBUs, unknown MNs, an unauthorized MAG")
        bad_cost = bad_input(rig, checks, n, p.pid, bad)
        code, _, _ = stop(p)
        rig.world.processes.remove(p)
        left = os.path.exists(pin_dir)
        logfile.seek(0)
        err = logfile.read()
    finally:
        os.unlink(f.name)
        logfile.close()
        shutil.rmtree(state, ignore_errors=True)
    if not left:
        rig.world.instances.remove(pins)

    statuses = {k: v["count"] for k, v in r["statuses"].items()}
    checks.check(f"registrations.{n}.accepted",
                 r["accepted"] == n and statuses == {"0": n} and r["timed_out"] == 0 and
                 not any(r[k] for k in ("incomplete", "malformed", "unmatched", "wrong_mn", "send_errors")),
                 f"{r['accepted']} of {n} accepted with prefix, address and key; statuses {statuses}, "
                 f"{r['timed_out']} timed out, {r['incomplete']} incomplete, {r['malformed']} malformed, "
                 f"{r['unmatched']} unmatched, {r['wrong_mn']} with another MN-ID, {r['send_errors']} not sent")
    # One session, one IPv4 and one IPv6 route per MN; their GRE keys are the session ids (the
    # sessions array's index), so tunnel_keys holds none (README "Data plane at scale").
    want = {"sessions": n, "mn_routes4": n, "mn_routes6": n, "tunnel_keys": 0}   # (before the latency runs)
    checks.check(f"registrations.{n}.dataplane", all(census.get(k) == v for k, v in want.items()),
                 f"maps hold {census} (want {want})")
    checks.check(f"registrations.{n}.agent", metrics.get("xpmip_bindings.registered") == n,
                 f"the agent reports {metrics.get('xpmip_bindings.registered')} registered bindings")
    refreshed = refresh["accepted"]
    checks.check(f"registrations.{n}.refresh", refreshed == probe, f"{refreshed} of {probe} refreshes accepted")
    total0, total1 = sum(m["bytes"] for m in maps0.values()), sum(m["bytes"] for m in maps1.values())
    checks.check(f"registrations.{n}.memory", rss1 > rss0 and total1 > total0,
                 f"RSS {rss0} -> {rss1}, maps {total0} -> {total1} bytes")
    checks.check(f"registrations.{n}.shutdown", code == 0 and not left,
                 f"exit {code}, pins {'left behind' if left else 'removed'}; log: {err.strip()[-300:]}")
    return {
        "mns": n, "limit": n, "window": WINDOW, "mags": len(MAGS), "transport": r["transport"],
        "per_second": r["per_second"], "seconds": r["seconds"], "statuses": statuses, "timed_out": r["timed_out"],
        "rtt_us": r["rtt_us"], "timeline": r["timeline"],
        "lma_cpu_seconds": cpu1 - cpu0, "lma_wait_seconds": wait1 - wait0,
        "cpu_us_per_registration": (cpu1 - cpu0) / n * 1e6,
        "rss_before": rss0, "rss_after": rss1, "rss_bytes_per_session": (rss1 - rss0) / n,
        "maps_empty_bytes": total0, "maps_full_bytes": total1, "map_bytes_per_session": total1 / n,
        "census": census, "metrics_seconds": metrics_seconds, "metrics_cpu_seconds": metrics_cpu,
        "metrics_bytes": metrics["bytes"], "latency": latency, "latency_mns": extra, "bad_input": bad_cost,
        "refresh": {"count": probe, "accepted": refreshed, "rtt_us": refresh["rtt_us"],
                    "lma_cpu_us_each": refresh_cpu / probe * 1e6},
    }


def subscribers(rig, checks, count, registrations):
    """Start-up of an LMA whose subscriber store holds `count` profiles, and registrations by them."""
    name = f"{rig.world.prefix}-sub"
    sock = f"/run/xpmip/{name}.sock"
    tmp = tempfile.mkdtemp(prefix="xpmip-bench-subscribers-")
    store, csv, cfg = f"{tmp}/subscribers.lmdb", f"{tmp}/subscribers.csv", f"{tmp}/lma.yaml"
    with open(cfg, "w") as f:   # no mobile_node_domains: only the store authorizes
        f.write(config(name, registrations, f"{tmp}/state", store).split("mobile_node_domains:")[0])
    with open(csv, "w") as f:
        f.write("id,realm,gre\n")
        f.writelines(f"sub{i}@{DOMAIN},1,{'keys-required' if i % 2 else ''}\n" for i in range(count))
    pins = Pins(rig.lma_ns, name)
    rig.world.instances.append(pins)
    try:
        log(f"registrations: importing {count} subscribers")
        t0 = time.time()
        imp = subprocess.run([rig.tools.xpmip, "subscribers", "import", csv, "-c", cfg], capture_output=True,
                             text=True, timeout=600)
        import_seconds = time.time() - t0
        checks.check("registrations.subscribers.import", imp.returncode == 0,
                     (imp.stdout + imp.stderr).strip()[-300:])
        log("registrations: an LMA on the store")
        t0 = time.time()
        p = rig.start([rig.tools.xpmip, "lma", "-c", cfg], output=subprocess.DEVNULL)
        dptest.wait_for(lambda: p.poll() is not None or os.path.exists(sock), timeout=120, interval=0.01)
        startup = time.time() - t0
        rss = proc_status(p.pid, "VmRSS")
        cpu0 = cpu_seconds(p.pid)
        r = rig.loadgen("--count", str(registrations), "--window", str(WINDOW), "--nai", f"sub{{}}@{DOMAIN}")
        cpu = cpu_seconds(p.pid) - cpu0
        rss_after = proc_status(p.pid, "VmRSS")
        code, _, _ = stop(p)
        rig.world.processes.remove(p)
        left = os.path.exists(f"/sys/fs/bpf/xpmip/{name}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not left:
        rig.world.instances.remove(pins)
    checks.check("registrations.subscribers.accepted", r["accepted"] == registrations and r["timed_out"] == 0,
                 f"{r['accepted']} of {registrations} MNs of the store accepted, statuses {r['statuses']}")
    checks.check("registrations.subscribers.shutdown", code == 0 and not left, f"exit {code}")
    return {"count": count, "import_seconds": import_seconds, "startup_seconds": startup, "rss": rss,
            "rss_after": rss_after, "registrations": registrations, "per_second": r["per_second"],
            "cpu_us_per_registration": cpu / registrations * 1e6}


def journal_cost(rig, checks, n, journal):
    """Registrations/s and LMA CPU per registration for `n` new MNs, the binding journal on or off
    (issue 17: it may cost at most 10 %), and what the journal held after."""
    name = f"{rig.world.prefix}-j{'on' if journal else 'off'}"
    sock = f"/run/xpmip/{name}.sock"
    tmp = tempfile.mkdtemp(prefix="xpmip-bench-journal-")
    cfg = f"{tmp}/lma.yaml"
    with open(cfg, "w") as f:
        f.write(config(name, n, f"{tmp}/state", journal=journal))
    pins = Pins(rig.lma_ns, name)
    rig.world.instances.append(pins)
    try:
        log(f"registrations: {n} MNs with the journal {'on' if journal else 'off'}")
        p = rig.start([rig.tools.xpmip, "lma", "-c", cfg], output=subprocess.DEVNULL)
        dptest.wait_for(lambda: p.poll() is not None or os.path.exists(sock), timeout=120, interval=0.01)
        cpu0 = cpu_seconds(p.pid)
        r = rig.loadgen("--count", str(n), "--window", str(WINDOW), "--nai", f"mn{{}}@{DOMAIN}")
        cpu = cpu_seconds(p.pid) - cpu0
        code, _, _ = stop(p)
        rig.world.processes.remove(p)
        left = os.path.exists(f"/sys/fs/bpf/xpmip/{name}")
        files = sorted(x for x in os.listdir(f"{tmp}/state") if x.startswith(("journal-", "snapshot"))) if journal else []
        size = sum(os.path.getsize(f"{tmp}/state/{x}") for x in files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not left:
        rig.world.instances.remove(pins)
    checks.check(f"registrations.journal_{'on' if journal else 'off'}.accepted",
                 r["accepted"] == n and r["timed_out"] == 0 and code == 0 and not left,
                 f"{r['accepted']} of {n} accepted, exit {code}")
    if journal:
        checks.check("registrations.journal_on.files", size > n * 50, f"journal files {files}, {size} bytes")
    return {"mns": n, "journal": journal, "per_second": r["per_second"], "cpu_us_per_registration": cpu / n * 1e6,
            "journal_files": files, "journal_bytes": size}


def run(tools: Tools, checks: Checks, quick: bool):
    sizes = [1000] if quick else [10_000, 100_000, 1_000_000]
    echo_count = 1000 if quick else 100_000
    probe = 10 if quick else 50
    extra = 1000 if quick else 20_000                  # MNs per latency run
    stored, by_store = (10_000, 1000) if quick else (1_000_000, 10_000)
    world = dptest.World("brg")
    try:
        rig = Rig(world, tools)
        results = {"echo": echo_baseline(rig, checks, echo_count), "runs": [], "lma_cpu": LMA_CPU,
                   "generator_cpu": GENERATOR_CPU, "window": WINDOW, "mags": len(MAGS)}
        for n in sizes:
            results["runs"].append(measure(rig, checks, n, probe, extra, extra))
        results["subscribers"] = subscribers(rig, checks, stored, by_store)
        journaled = 1000 if quick else 100_000
        results["journal"] = [journal_cost(rig, checks, journaled, False), journal_cost(rig, checks, journaled, True)]
        base = results["runs"][0]
        for r in results["runs"]:
            r["vs_first"] = r["per_second"] / base["per_second"] if base["per_second"] else 0.0
            r["vs_echo"] = r["per_second"] / results["echo"]["per_second"] if results["echo"]["per_second"] else 0.0
        return results
    finally:
        world.close()
