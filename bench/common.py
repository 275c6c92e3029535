"""Shared pieces of the benchmark suite: where the built tools are, the namespace harness of the
data plane tests (tests/dataplane/dptest.py), checks, and what machine this is."""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "dataplane"))

import dptest  # noqa: E402  (World, Netns, Instance: namespaces and instances, cleaned up on close)


class Tools:
    """Paths of what the build made; set dptest's tool paths to them."""

    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.dp = os.path.join(self.build, "tools", "xpmip-dp")
        self.bench = os.path.join(self.build, "bench", "xpmip-bench")
        self.sink_obj = os.path.join(self.build, "bench", "bench_sink.bpf.o")
        self.xdp_pass_obj = os.path.join(self.build, "bpf", "xdp_pass.bpf.o")
        self.xpmip = os.path.join(self.build, "user", "xpmip")
        self.loadgen = os.path.join(self.build, "tools", "xpmip-loadgen")
        missing = [p for p in (self.dp, self.bench, self.sink_obj, self.xdp_pass_obj, self.xpmip, self.loadgen)
                   if not os.path.exists(p)]
        if missing:
            raise SystemExit(f"bench: not built: {', '.join(missing)} (build with bench/run, or "
                             f"cmake --build {self.build})")
        dptest.TOOL = self.dp
        dptest.XDP_PASS_OBJ = self.xdp_pass_obj


class Checks:
    """What a run verified. The smoke test fails when any check fails; a full run reports them."""

    def __init__(self):
        self.items = []

    def check(self, name, ok, detail=""):
        self.items.append({"name": name, "ok": bool(ok), "detail": detail})
        if not ok:
            print(f"bench: CHECK FAILED: {name}: {detail}", file=sys.stderr)
        return ok

    @property
    def failed(self):
        return [c for c in self.items if not c["ok"]]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run_json(cmd, input=None, timeout=900):
    """Run a tool that prints one JSON object; a failure raises with its stderr."""
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed ({r.returncode}): {r.stderr.strip()}")
    return json.loads(r.stdout)


def enter(ns, *cmd):
    """The command prefix that runs in a namespace's network only (keeps bpffs visible)."""
    return ["nsenter", f"--net=/run/netns/{ns.name}", *cmd]


def median(values):
    return statistics.median(values) if values else 0.0


def machine():
    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""
    model = ""
    for line in sh("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    commit = sh("git", "-C", REPO, "rev-parse", "--short", "HEAD")
    dirty = sh("git", "-C", REPO, "status", "--porcelain", "--untracked-files=no")
    hypervisor = sh("systemd-detect-virt") or ""
    return {
        "cpu_model": model or platform.processor(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "virtualization": hypervisor if hypervisor != "none" else "",
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "commit": commit + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_start": os.getloadavg()[0],
    }
