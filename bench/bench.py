#!/usr/bin/python3
"""xpmip benchmark suite: per-packet cost, forwarding rate, sessions at scale, registrations.

Prints a markdown table on stdout and writes results.json and plot.png to --out. Not a
pass/fail test, but every figure comes with checks of what was measured (the right verdict and
output for every path, packets actually delivered...): with --quick (the CI smoke) any failed
check fails the run. See bench/README.md. Run it through bench/run, which builds first; as root.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import REPO, Checks, Tools, log, machine  # noqa: E402

SUITES = ["per_packet", "forwarding", "sessions", "registrations"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke run (CI): few repetitions, small sizes")
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results"), help="results directory")
    ap.add_argument("--build", default=os.environ.get("XPMIP_BUILD", os.path.join(REPO, "build")),
                    help="build directory (default: $XPMIP_BUILD or build/)")
    ap.add_argument("--only", action="append", choices=SUITES, help="run only this suite (repeatable)")
    ap.add_argument("--reps", type=int, help="forwarding: runs per measurement (default 5, quick 1)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (network namespaces, BPF)")
    if not os.path.ismount("/sys/fs/bpf"):
        sys.exit("bench: bpffs is not mounted on /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)")
    tools = Tools(args.build)
    checks = Checks()
    started = time.time()
    res = {"quick": args.quick, "machine": machine(), "checks": checks.items}
    for suite in args.only or SUITES:
        t0 = time.time()
        try:
            if suite == "per_packet":
                import per_packet
                res[suite] = per_packet.run(tools, checks, args.quick)
            elif suite == "forwarding":
                import forwarding
                res[suite] = forwarding.run(tools, checks, args.quick, reps=args.reps)
            elif suite == "sessions":
                import sessions
                res[suite] = sessions.run(tools, checks, args.quick)
            else:
                import registrations
                res[suite] = registrations.run(tools, checks, args.quick)
        except Exception as e:  # noqa: BLE001 - a suite that breaks is reported, the others still run
            checks.check(f"{suite}.ran", False, f"{type(e).__name__}: {e}")
            continue
        log(f"{suite}: {time.time() - t0:.0f} s")
    res["seconds"] = time.time() - started
    res["machine"]["loadavg_at_end"] = os.getloadavg()[0]

    import report
    os.makedirs(args.out, exist_ok=True)
    try:
        report.plot(res, os.path.join(args.out, "plot.png"))
    except ImportError as e:
        checks.check("plot", False, f"matplotlib is missing ({e}): apt-get install python3-matplotlib")
    table = report.markdown(res)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(table)
    print(table, end="")
    log(f"wrote {args.out}/results.json, table.md, plot.png in {res['seconds']:.0f} s")
    failed = checks.failed
    if failed:
        log(f"{len(failed)} check(s) failed: " + ", ".join(c["name"] for c in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
