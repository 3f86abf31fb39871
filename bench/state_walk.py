#!/usr/bin/env python3
"""What every per-source structure holds at the end of a capture (issue 12's memory proof, SYN flood).

    python bench/state_walk.py CAPTURE [--db NEW.db] [--no-alerts] [--trace]

Runs ``otwatch analyze``'s pipeline in-process (run summary, alert stage, the inventory with
``--db``) and, at the end of the capture (before ``finish``), prints the size of every table that
holds state per source, target or pair: the engine's (``Pipeline.state_sizes()``), the pipeline's
address-text cache, the run summary's distinct addresses, the alert stage's windows and runs
(scan, floods, logins, masters, context) and the inventory's address maps.  ``--trace`` adds
tracemalloc's total and the part allocated under each stage (slow).  Run it at two lengths of a
capture (bench/hostile_bench.py cuts prefixes) and compare: a table that grows with the file is
what to bound.  Compiled kernels unless ``OTWATCH_NO_EXTENSIONS=1``.
"""
from __future__ import annotations

import argparse
import os
import sys


def _mem() -> str:
    from rss_curve import mem

    d = mem()
    return f"HWM {d['VmHWM']} MiB, RSS {d['VmRSS']} MiB"


def sizes(p, summary, alerts, inv) -> dict:
    out = {f"engine.{k}": v for k, v in p.state_sizes().items()}
    out["summary.hosts_ip"] = len(summary.hosts_ip)
    out["summary.hosts_mac"] = len(summary.hosts_mac)
    if alerts is not None:
        st = alerts.stage
        sc = st.scan
        for name in ("hosts", "ports", "fcs", "units", "units_failed", "units_all", "ranges_failed"):
            out[f"scan.{name}.windows"] = len(getattr(sc, name).windows)
        out["scan.sweep.windows"] = len(sc.sweep.windows)
        out["scan.sweep.steps"] = len(sc.sweep.steps._s)
        out["scan.topics"] = len(sc._topics)
        fl = st.floods
        for name in ("runs", "sessions", "episodes", "_channels"):
            out[f"floods.{name}"] = len(getattr(fl, name))
        out["logins.runs"] = sum(len(c.runs) for c in vars(st.logins).values() if hasattr(c, "runs"))
        out["masters.first"] = len(st.masters.first)
        out["masters.writers"] = len(st.masters.writers)
        out["masters.bursts"] = len(st.masters.bursts.windows)
        out["context.flows"] = len(st.ctx.flows)
        out["book.alerts"] = len(alerts.book._alerts)
        out["book.frames"] = len(alerts.book._frames)
        out["book.seen_ids"] = len(alerts.book.seen_ids)
    if inv is not None:
        out["inventory.assets"] = len(inv.assets)
        out["inventory.ip_owner"] = len(inv.ip_owner)
        out["inventory.mac_ips"] = sum(len(v) for v in inv.mac_ips.values())
        out["inventory.flows"] = len(getattr(inv, "_flows", ()))
        out["inventory.agg_links"] = len(inv._agg_links)
        out["inventory.link_vlan"] = len(inv._link_vlan)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--db", default=None, help="a new inventory database here (else no inventory)")
    ap.add_argument("--no-alerts", action="store_true")
    ap.add_argument("--trace", action="store_true", help="tracemalloc totals (slow)")
    a = ap.parse_args()
    os.environ.setdefault("OTWATCH_REQUIRE_EXTENSIONS", "0" if os.environ.get("OTWATCH_NO_EXTENSIONS") else "1")
    if a.trace:
        import tracemalloc

        tracemalloc.start(1)
    from otwatch.sensor.pipeline import Pipeline

    from rss_curve import analyze_consumers, finish_analyze

    s, summary, inv, alerts, consumers = analyze_consumers(a.db, a.no_alerts)
    p = Pipeline(consumers, s)
    p.run_file(a.capture)
    print(f"{p.stats()['capture.packets']:,} packets, end of capture: {_mem()}")
    for k, v in sizes(p, summary, alerts, inv).items():
        if v:
            print(f"  {k:32} {v:>9,}")
    if a.trace:
        import tracemalloc

        print(f"  traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB")
    finish_analyze(p, alerts, inv)


if __name__ == "__main__":
    main()
