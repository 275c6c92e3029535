"""The markdown table and the PNG plot of a results JSON (bench/results/results.json)."""


def _mpps(pps):
    return f"{pps / 1e6:.2f}" if pps >= 1e4 else f"{pps / 1e6:.4f}"


def _bytes(n):
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def _count(n):
    return f"{n // 1_000_000} M" if n >= 1_000_000 and n % 1_000_000 == 0 else \
        f"{n // 1000} k" if n >= 1000 and n % 1000 == 0 else str(n)


def machine_line(m):
    virt = f", {m['virtualization']} VM" if m.get("virtualization") else ""
    return (f"{m['cpu_model']}, {m['cpus']} CPUs{virt}, {m['memory_gib']} GiB, Linux {m['kernel']}; "
            f"commit {m['commit']}, {m['date']}; load average {m['loadavg_at_start']:.1f} at start"
            + (f", {m['loadavg_at_end']:.1f} at end" if "loadavg_at_end" in m else ""))


def markdown(res):
    from per_packet import DIRECTIONS
    out = [f"Machine: {machine_line(res['machine'])}. " + ("**Quick smoke run: few repetitions, not for comparison.**"
                                                          if res.get("quick") else "Medians of repeated runs.")]
    pp = res.get("per_packet")
    if pp:
        out += ["", "### Per-packet cost (BPF_PROG_TEST_RUN, ns/packet and ratio to a bare XDP_TX)", "",
                f"Bare XDP_TX: {pp['bare_xdp_tx_ns']:.1f} ns/packet. Each path: XDP program time from frame in "
                f"to verdict, caches warm, the redirect itself not included; {pp['rounds']} rounds, median.", ""]
        for fam in (4, 6):
            out += [f"| inner IPv{fam} | " + " | ".join(d[1] for d in DIRECTIONS) + " |",
                    "|---" * (len(DIRECTIONS) + 1) + "|"]
            labels = []
            for p in pp["paths"]:
                if p["label"] not in labels:
                    labels.append(p["label"])
            for label in labels:
                cells = []
                for d, _ in DIRECTIONS:
                    p = next((p for p in pp["paths"] if p["label"] == label and p["direction"] == d and
                              p["inner"] == fam), None)
                    cells.append(f"{p['ns']:.0f} ns, {p['ratio']:.0f}x" + ("" if p["ok"] else " (CHECK FAILED)")
                                 if p else "-")
                out.append(f"| {label} | " + " | ".join(cells) + " |")
            out.append("")
    fw = res.get("forwarding")
    if fw:
        from forwarding import GENERATORS, LABELS, VARIANTS
        cols = sorted({(r["size"], r["cores"]) for r in fw["rows"]})
        out += ["### Forwarding rate through veth (Mpps delivered to the sink, ratio to kernel routing)", "",
                f"{fw['reps']} runs of {fw['seconds']} s each, median; the ratio is the median of each run's ratio to "
                "routing measured seconds apart. One core: everything on CPU 0, two cores: two flows on CPUs 0 "
                "and 1. Other programs' share of those CPUs during the runs (user time less the generator's; the "
                f"machine is shared): {fw.get('others_share', 0):.0%}.", ""]
        for gen, gen_label in GENERATORS.items():
            if not any(r.get("generator", "afpacket") == gen for r in fw["rows"]):
                continue
            out += [f"| {gen_label} | " + " | ".join(f"{s} B, {c} core{'s' if c > 1 else ''}" for s, c in cols) + " |",
                    "|---" * (len(cols) + 1) + "|"]
            for v in VARIANTS:
                cells = []
                for s, c in cols:
                    r = next((r for r in fw["rows"] if r.get("generator", "afpacket") == gen and r["variant"] == v
                              and r["size"] == s and r["cores"] == c), None)
                    cells.append(f"{_mpps(r['rx_pps'])} ({r['vs_routing']:.2f}x)" if r else "-")
                out.append(f"| {v}: {LABELS[v]} | " + " | ".join(cells) + " |")
            cells = []
            for sz, c in cols:
                r = next((r for r in fw["rows"] if r.get("generator", "afpacket") == gen and r["variant"] == "xpmip"
                          and r["size"] == sz and r["cores"] == c and "vs_redirect" in r), None)
                cells.append(f"{r['vs_redirect']:.2f}x" if r else "-")
            out.append("| xpmip / bare XDP_REDIRECT (same run) | " + " | ".join(cells) + " |")
            out.append("")
        pair = fw.get("pair")
        if pair:
            out += ["### One MAG-LMA pair: GRE from one receiving CPU into the LMA (Mpps delivered)", "",
                    f"{pair['flows']} inner flows, {pair['size']} B, one generator thread on CPU 0 (its cost is on "
                    "CPU 0 in every figure); dataplane.spread_cpus as given. Dropped: handed to a cpumap queue that "
                    "was full.", "", "| spread_cpus | Mpps | ratio to none | handed on | dropped at the cpumap |",
                    "|---|---|---|---|---|"]
            for sp, rate in pair["rates"].items():
                st = pair["lma_stats"].get(sp, {})
                out.append(f"| {sp} | {_mpps(rate)} | {rate / pair['one_cpu_pps']:.2f}x | {st.get('cpu_spread', 0)} | "
                           f"{st.get('cpumap_dropped', 0)} |")
            out.append("")
    ss = res.get("sessions")
    if ss:
        out += ["### Sessions (GRE key, IPv4; written through the session API, no agent)", "",
                "| sessions (= map limit) | map memory, empty | map memory, full | per session | "
                "of it per CPU | session writes/s (1 core) |", "|---|---|---|---|---|---|"]
        for m in ss["memory"]:
            out.append(f"| {_count(m['sessions'])} | {_bytes(m['maps_empty_bytes'])} | {_bytes(m['maps_full_bytes'])} "
                       f"| {m['bytes_per_session']:.0f} B | {m.get('percpu_bytes_per_session', 0):.0f} B "
                       f"| {m['fill_per_second']:.0f} |")
        out.append("")
        sc = ss.get("scale")
        if sc:
            n = _count(sc["sessions"])
            spread = "every packet another MN, at random" if sc.get("spread") else \
                f"{sc['spread_sessions']} MNs round robin"
            out += [f"| LMA path (ns/packet) | 1 session | {n} sessions, same MN | {n} sessions, {spread} |",
                    "|---|---|---|---|"]
            for r in sc["rows"]:
                what = "uplink: GRE key -> session, decap" if r["direction"] == "uplink" else \
                    "downlink: MN address -> session, encap"
                out.append(f"| {what} | {r['one']:.0f} | {r['same']:.0f} | {r['spread']:.0f} |")
            if "cold_lookup_ns" in sc:
                out.append(f"| reference (same run): minimal {{decap, encap}} hot, decap with a random key of {n} "
                           f"| - | decap {sc['minimal_decap_ns']:.0f}, encap {sc['minimal_encap_ns']:.0f} "
                           f"| {sc['cold_lookup_ns']:.0f} |")
                for r in sc["rows"]:
                    out.append(f"| {r['direction']} / reference | - | {r['same_vs_minimal']:.2f}x "
                               f"| {r['spread_vs_cold_lookup']:.2f}x |")
            if "memory_latency_ns" in sc:
                out += ["", f"For scale: one cache-missing dependent load (random pointer chase through "
                        f"{sc['memory_latency_mib']} MiB) takes {sc['memory_latency_ns']:.0f} ns on this machine."]
            out.append("")
    rg = res.get("registrations")
    if rg:
        out += ([""] if out[-1] else []) + _registrations(rg)
    checks = res.get("checks", [])
    failed = [c for c in checks if not c["ok"]]
    out.append(f"Checks: {len(checks) - len(failed)} passed, {len(failed)} failed.")
    return "\n".join(out) + "\n"


def _ms(us):
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:.0f} us"


def _registrations(rg):
    runs, echo = rg["runs"], rg["echo"]
    first = _count(runs[0]["mns"])
    out = ["### Control plane: registrations through the LMA agent", "",
           f"`xpmip lma` on CPU {rg['lma_cpu']}, `xpmip-loadgen` on CPU {rg['generator_cpu']}: "
           f"{rg['mags']} MAGs over IPv4/UDP 5436, {rg['window']} PBUs outstanding; each registration gets an IPv6 "
           "prefix, an IPv4 home address and GRE keys (a full data plane session). Baseline in the same run: an echo "
           f"responder (the same socket and codec on CPU {rg['lma_cpu']}, no registration logic, no data plane) "
           f"answered {_count(echo['count'])} PBUs at {echo['per_second']:.0f}/s, "
           f"{echo['cpu_us_per_pba']:.0f} us of its CPU per PBA.", "",
           f"| MNs (= session limit) | registrations/s | vs {first} | vs echo | LMA running / waiting for its CPU | "
           "LMA CPU per registration | PBA round trip, median / p99 | one refresh at a time: round trip, LMA CPU | "
           "one /metrics scrape: wall, LMA CPU |", "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        rf = r["refresh"]
        busy = f"{r['lma_cpu_seconds'] / r['seconds']:.0%}" if r["seconds"] else "-"
        if "lma_wait_seconds" in r and r["seconds"]:
            busy += f" / {r['lma_wait_seconds'] / r['seconds']:.0%}"
        out.append(f"| {_count(r['mns'])} | {r['per_second']:.0f} | {r['vs_first']:.2f}x | {r['vs_echo']:.2f}x | "
                   f"{busy} | {r['cpu_us_per_registration']:.0f} us | "
                   f"{_ms(r['rtt_us']['p50'])} / {_ms(r['rtt_us']['p99'])} | "
                   f"{_ms(rf['rtt_us']['p50'])}, {_ms(rf['lma_cpu_us_each'])} | {_ms(r['metrics_seconds'] * 1e6)}, "
                   f"{_ms(r.get('metrics_cpu_seconds', 0) * 1e6)} |")
    out += ["", "| MNs | agent RSS, before -> after | agent RSS per session | map memory, full (bpftool) | "
            "map memory per session | agent + maps per session |", "|---|---|---|---|---|---|"]
    for r in runs:
        out.append(f"| {_count(r['mns'])} | {_bytes(r['rss_before'])} -> {_bytes(r['rss_after'])} | "
                   f"{r['rss_bytes_per_session']:.0f} B | {_bytes(r['maps_full_bytes'])} | "
                   f"{r['map_bytes_per_session']:.0f} B | "
                   f"{_bytes(r['rss_bytes_per_session'] + r['map_bytes_per_session'])} |")
    if runs and "latency" in runs[0]:
        out += ["", f"PBA round trip of {_count(runs[0]['latency_mns'])} more registrations at an LMA holding the MNs "
                "above, alone and while a client scrapes /metrics every second (the endpoint has its own threads):", "",
                "| MNs held | alone: median / p99 | with a scrape a second: median / p99 | one scrape: size |",
                "|---|---|---|---|"]
        for r in runs:
            a, w = r["latency"]["alone"]["rtt_us"], r["latency"]["scraping"]["rtt_us"]
            out.append(f"| {_count(r['mns'])} | {_ms(a['p50'])} / {_ms(a['p99'])} | {_ms(w['p50'])} / {_ms(w['p99'])} | "
                       f"{_bytes(r['metrics_bytes'])} |")
    if runs and "bad_input" in runs[0]:
        out += ["", "Bad input at the same LMA: the CPU of its event loop per message (against a registration's "
                "above) and its RSS growth over all three:", "",
                "| MNs held | malformed PBU | unknown MN (153) | unauthorized MAG (154) | RSS growth |",
                "|---|---|---|---|---|"]
        for r in runs:
            b = r["bad_input"]
            out.append(f"| {_count(r['mns'])} | {b['malformed']['cpu_us_each']:.1f} us | "
                       f"{b['unknown_mn']['cpu_us_each']:.1f} us | {b['unauthorized_mag']['cpu_us_each']:.1f} us | "
                       f"{_bytes(b['rss_growth'])} |")
    sub = rg.get("subscribers")
    if sub:
        out += ["", f"Subscriber store: {_count(sub['count'])} profiles imported in {sub['import_seconds']:.1f} s; an LMA "
                f"on it up in {sub['startup_seconds']:.2f} s with {_bytes(sub['rss'])} RSS; {_count(sub['registrations'])} "
                f"MNs registered by their stored profiles at {sub['per_second']:.0f}/s, "
                f"{sub['cpu_us_per_registration']:.0f} us of LMA CPU each."]
    jr = rg.get("journal")
    if jr:
        off, on = jr
        ratio = on["per_second"] / off["per_second"] if off["per_second"] else 0.0
        out += ["", f"The binding journal (issue 17), {_count(on['mns'])} new MNs at a fresh LMA, off and on in the same run "
                "(the figures above are with it off):", "",
                "| journal | registrations/s | LMA CPU per registration | on disk after |", "|---|---|---|---|",
                f"| off | {off['per_second']:.0f} | {off['cpu_us_per_registration']:.1f} us | - |",
                f"| on | {on['per_second']:.0f} ({ratio:.2f}x) | {on['cpu_us_per_registration']:.1f} us | "
                f"{_bytes(on['journal_bytes'])} in {', '.join(on['journal_files'])} |"]
    return out + [""]


def plot(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pp, fw, ss, rg = res.get("per_packet"), res.get("forwarding"), res.get("sessions"), res.get("registrations")
    rows = [k for k in ("pp", "fw", "ss", "rg") if {"pp": pp, "fw": fw, "ss": ss, "rg": rg}[k]]
    if not rows:
        return False
    fig = plt.figure(figsize=(11, 4.2 * len(rows)))
    grid = fig.add_gridspec(len(rows), 2)
    for i, k in enumerate(rows):
        if k == "pp":
            from per_packet import DIRECTIONS
            ax = fig.add_subplot(grid[i, :])
            labels = []
            for p in pp["paths"]:
                if p["label"] not in labels:
                    labels.append(p["label"])
            width = 0.2
            for j, (d, dname) in enumerate(DIRECTIONS):
                vals = []
                for label in labels:
                    ps = [p["ns"] for p in pp["paths"] if p["label"] == label and p["direction"] == d]
                    vals.append(sum(ps) / len(ps) if ps else 0)
                ax.bar([x + (j - 1.5) * width for x in range(len(labels))], vals, width, label=dname)
            ax.axhline(pp["bare_xdp_tx_ns"], color="black", linestyle="--", linewidth=1,
                       label=f"bare XDP_TX ({pp['bare_xdp_tx_ns']:.1f} ns)")
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
            ax.set_ylabel("ns/packet (mean of inner IPv4, IPv6)")
            ax.set_title("Per-packet cost of each path, BPF_PROG_TEST_RUN")
            ax.set_ylim(top=ax.get_ylim()[1] * 1.2)
            ax.legend(fontsize=8, ncol=3)
        elif k == "fw":
            from forwarding import VARIANTS
            ax = fig.add_subplot(grid[i, :])
            cols = sorted({(r.get("generator", "afpacket"), r["size"], r["cores"]) for r in fw["rows"]},
                          key=lambda k: (k[0] != "xdp", k[1], k[2]))
            width = 0.8 / len(VARIANTS)
            for j, v in enumerate(VARIANTS):
                vals = [next((r["rx_pps"] / 1e6 for r in fw["rows"] if r.get("generator", "afpacket") == g and
                              r["variant"] == v and r["size"] == s and r["cores"] == c), 0) for g, s, c in cols]
                ax.bar([x + (j - (len(VARIANTS) - 1) / 2) * width for x in range(len(cols))], vals, width, label=v)
            ax.set_xticks(range(len(cols)))
            ax.set_xticklabels([f"{g}: {s} B, {c} core{'s' if c > 1 else ''}" for g, s, c in cols], fontsize=8,
                               rotation=15, ha="right")
            ax.set_ylabel("Mpps delivered to the sink")
            ax.set_title("Forwarding through veth and namespaces (median of runs)")
            ax.legend(fontsize=8)
        elif k == "rg":
            _plot_registrations(fig, grid, i, rg)
        else:
            ax = fig.add_subplot(grid[i, 0])
            ns = [m["sessions"] for m in ss["memory"]]
            ax.plot(ns, [m["bytes_per_session"] for m in ss["memory"]], marker="o", label="maps, full")
            ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_xlabel("sessions (= map limit)")
            ax.set_ylabel("bytes per session (bpftool)")
            ax.set_title("Map memory per session")
            ax.legend(fontsize=8)
            sc = ss.get("scale")
            if sc:
                ax = fig.add_subplot(grid[i, 1])
                n = _count(sc["sessions"])
                kinds = [("one", "1 session"), ("same", f"{n}, same MN"),
                         ("spread", f"{n}, {sc['spread_sessions']} MNs")]
                width = 0.25
                for j, (key, name) in enumerate(kinds):
                    ax.bar([x + (j - 1) * width for x in range(len(sc["rows"]))], [r[key] for r in sc["rows"]],
                           width, label=name)
                ax.set_xticks(range(len(sc["rows"])))
                ax.set_xticklabels([f"LMA {r['direction']}" for r in sc["rows"]])
                ax.set_yscale("log")
                ax.set_ylabel("ns/packet (log scale)")
                ax.set_title("1 session vs many in the maps")
                ax.legend(fontsize=8)
    fig.suptitle("xpmip benchmarks - " + machine_line(res["machine"]), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _plot_registrations(fig, grid, i, rg):
    runs = rg["runs"]
    ax = fig.add_subplot(grid[i, 0])
    ax.bar(range(len(runs)), [r["per_second"] for r in runs], 0.6, label="xpmip lma")
    ax.axhline(rg["echo"]["per_second"], color="black", linestyle="--", linewidth=1,
               label=f"echo responder ({rg['echo']['per_second']:.0f}/s)")
    ax.set_xticks(range(len(runs)))
    ax.set_xticklabels([f"{_count(r['mns'])} MNs" for r in runs])
    ax.set_ylabel("registrations/s (accepted PBAs)")
    ax.set_title(f"Registrations, LMA on one core, {rg['window']} PBUs outstanding")
    ax.legend(fontsize=8)
    # The largest run over time: the LMA's CPU per registration in each interval against the
    # bindings held (samples [seconds, accepted, LMA CPU seconds]).
    last = runs[-1]
    tl = [p for p in last["timeline"] if len(p) == 3]
    xs, ys = [], []
    for (_, n0, c0), (_, n1, c1) in zip(tl, tl[1:]):
        if n1 > n0:
            xs.append(n1)
            ys.append((c1 - c0) / (n1 - n0) * 1e6)
    ax = fig.add_subplot(grid[i, 1])
    ax.plot(xs, ys, marker=".", linewidth=1, label="registrations, 64 outstanding")
    ax.scatter([r["mns"] for r in runs], [r["refresh"]["lma_cpu_us_each"] for r in runs], color="red", zorder=3,
               label="refresh, one at a time")
    ax.set_xlabel("bindings held (log scale)")
    ax.set_ylabel("LMA CPU per PBU (us, log scale)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"LMA CPU per PBU during the {_count(last['mns'])} run")
    ax.legend(fontsize=8)
