#!/usr/bin/env python3
"""Where peak RSS is reached in one run, and what the engine holds then (issue 12's memory proof).

    python bench/rss_curve.py CAPTURE [--db NEW.db] [--no-alerts] [--link-idle S] [--host-idle S]

Runs ``otwatch analyze``'s pipeline in-process (the run summary, the alert stage, the inventory
with ``--db``) and, after every chunk the pipeline drains, reads the process's high-water mark
(``VmHWM``) and resident set (``VmRSS``) from /proc; each time the mark grew by 4 MiB or more it
prints the packets so far and the engine's table sizes (``Pipeline.state_sizes()``): a jump of the
mark well above the resident set after it is a transient (an interval flush's records), a resident
set that follows the mark is state held.  Linux only; compiled kernels unless
``OTWATCH_NO_EXTENSIONS=1``.  In-process figures are a few MiB above the command line's (the
script's own imports).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys


def mem() -> dict:
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                k, v = line.split(":")
                d[k] = int(v.split()[0]) // 1024
    return d


def analyze_consumers(db, no_alerts: bool, settings=None):
    """What `otwatch analyze` runs, built in process: (pipeline settings, summary, inventory or None,
    alert stage or None, consumers), the collector tuned as analyze tunes it.  Shared by bench/state_walk.py."""
    from otwatch.sensor.alerts.analysis import OfflineAlerts
    from otwatch.sensor.clikit import tune_gc
    from otwatch.sensor.pipeline import Settings
    from otwatch.sensor.report import Summary

    s = settings if settings is not None else Settings()
    summary = Summary(s.limits.max_hosts)
    consumers: list = [summary]
    inv = None
    if db:
        from otwatch.sensor.inventory.store import open_inventory

        if os.path.exists(db):
            sys.exit(f"{db}: exists (a new database is wanted)")
        inv = open_inventory(db)
        consumers.append(inv)
    alerts = None
    if not no_alerts:
        alerts = OfflineAlerts(None, inv, inv.db if inv is not None else None, None)
        consumers += alerts.consumers
    tune_gc()
    return s, summary, inv, alerts, consumers


def finish_analyze(p, alerts, inv) -> None:
    """End what analyze_consumers() built, as analyze ends it."""
    p.finish()
    if alerts is not None:
        alerts.finish()
    if inv is not None:
        inv.flush()
        inv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--db", default=None, help="a new inventory database here (else no inventory)")
    ap.add_argument("--no-alerts", action="store_true")
    ap.add_argument("--link-idle", type=float, default=None, help="limits.link_idle_timeout (s)")
    ap.add_argument("--host-idle", type=float, default=None, help="limits.host_idle_timeout (s)")
    a = ap.parse_args()
    os.environ.setdefault("OTWATCH_REQUIRE_EXTENSIONS", "0" if os.environ.get("OTWATCH_NO_EXTENSIONS") else "1")
    from otwatch.sensor.pipeline import Pipeline, Settings

    s = Settings()
    over = {k: v for k, v in (("link_idle_timeout", a.link_idle), ("host_idle_timeout", a.host_idle)) if v is not None}
    if over:
        s = Settings(limits=dataclasses.replace(s.limits, **over))
    s, _summary, inv, alerts, consumers = analyze_consumers(a.db, a.no_alerts, s)
    p = Pipeline(consumers, s)
    last = [0]

    def progress(pos, size, packets) -> None:
        m = mem()
        if m["VmHWM"] >= last[0] + 4:
            last[0] = m["VmHWM"]
            z = p.state_sizes()
            print(f"{packets:>10,} packets  HWM {m['VmHWM']:4} MiB  RSS {m['VmRSS']:4} MiB  keys {z['keys']:>8,}  "
                  f"links {z['links']:>6,}  hosts {z['hosts']:>6,}  flows {z['flows']:>6,}  "
                  f"describe cache {z['describe_cache']:>7,}", flush=True)

    p.run_file(a.capture, progress=progress)
    progress(0, 0, p.stats()["capture.packets"])
    finish_analyze(p, alerts, inv)
    m = mem()
    st = p.stats()
    print(f"end: HWM {m['VmHWM']} MiB, RSS {m['VmRSS']} MiB; "
          + ", ".join(f"{k} {v:,}" for k, v in sorted(st.items()) if "expired" in k or "evicted" in k))


if __name__ == "__main__":
    main()
