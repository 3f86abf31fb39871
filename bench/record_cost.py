#!/usr/bin/env python3
"""Per-record costs of the Python side on one capture: where the time of a varied capture goes.

    python bench/record_cost.py bench/out/varied-400000.pcap [--repeat 3]

One process, CPU seconds (``time.process_time``), best of ``--repeat``:

1. engine + kernels: the capture fed to a pipeline's engine, records kept (what
   bench/stages.py calls "kernels");
2. per protocol, the full decode of every Message record (``Decoders.decode``)
   and the key description of every record (``Decoders.describe``, cached);
3. ``Pipeline._records`` on every record with no consumer (observations built,
   decoding included; a link's aggregates of one flush as one ``LinkAggregates``),
   then again collecting the observations;
4. the inventory (``note`` on every observation, ``observe_aggregates`` on every
   ``LinkAggregates``, into a new database, SQLite included), the summary, the alert
   stage (``OfflineAlerts`` without a store: scans, logins, anomalies, interval rates),
   and ``JSONLines`` writing every observation to /dev/null.

Prints one line per measurement and the record/observation counts by type, and the
aggregate rows (``R_AGG``) by protocol, Modbus lump rows (docs/protocols/modbus.md) among them.
"""
from __future__ import annotations

import argparse
import collections
import os
import tempfile
import time


def best(fn, repeat: int) -> float:
    out = None
    for _ in range(repeat):
        t = time.process_time()
        fn()
        el = time.process_time() - t
        out = el if out is None or el < out else out
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    from otwatch.sensor.clikit import tune_gc

    tune_gc()       # the collector's thresholds of every analyze run
    from otwatch.sensor import jsonout
    from otwatch.sensor import observations as O
    from otwatch.sensor.inventory.store import open_inventory
    from otwatch.sensor.pipeline import Pipeline, Settings
    from otwatch.sensor.source import ChunkReader, open_capture

    recs: list = []

    def kernels():
        recs.clear()
        eng = Pipeline([], Settings()).engine
        stream, _ = open_capture(a.file)
        with stream:
            r = ChunkReader(stream)
            while r.fill():
                r.consume(eng.feed(r.buf, False, r.end))
                recs.extend(eng.take())
            eng.feed(r.buf, True, r.end)
        eng.finish()
        recs.extend(eng.take())
        return eng.stats()["capture.packets"]

    el = best(kernels, a.repeat)
    packets = kernels()
    print(f"engine + kernels     {el:7.3f} s  {el / packets * 1e6:6.2f} us/packet  "
          f"({packets:,} packets, {len(recs):,} records)")
    print("records by tag:", dict(collections.Counter(r[0] for r in recs)))
    names = ("none", "modbus", "mqtt", "opcua", "tls")
    print("aggregate rows by protocol:", {names[a]: n for a, n in sorted(collections.Counter(
        r[1] for r in recs if r[0] == 17).items())},
          "of which Modbus lump rows:", sum(1 for r in recs if r[0] == 17 and r[1] == 1 and len(r[3]) == 5
                                            and r[3][3] == -4))
    p = Pipeline([], Settings())
    d = p.decoders
    msgs = [r for r in recs if r[0] == 15]
    for app in sorted({r[1] for r in msgs}):
        sub = [r for r in msgs if r[1] == app]
        d.module(app)
        def decode_all():
            for r in sub:
                d.decode(app, r[7], r[8], r[9], r[4])

        el = best(decode_all, a.repeat)
        print(f"decode app {app}         {el:7.3f} s  {el / len(sub) * 1e6:6.2f} us/message ({len(sub):,})")

    class Bulk:
        def __init__(self, keep=None):
            self.observe = self.observe_aggregates = keep or (lambda o: None)

    def records():
        q = Pipeline([Bulk()], Settings())
        q._links = p._links
        q._records(recs)

    for r in recs:           # links are announced once: replay them into p first
        if r[0] == 14:
            p._record(r)
    el = best(records, a.repeat)
    print(f"_records, no consumer {el:6.3f} s  {el / len(recs) * 1e6:6.2f} us/record")
    obs: list = []
    q = Pipeline([Bulk(obs.append)], Settings())
    q._records(recs)
    rows = sum(len(o.rows) for o in obs if type(o) is O.LinkAggregates)
    print("observations by type:", dict(collections.Counter(type(o).__name__ for o in obs)),
          f"({rows:,} aggregate rows)")
    per = len(obs) - sum(type(o) is O.LinkAggregates for o in obs) + rows    # as per-key observations
    with tempfile.TemporaryDirectory(prefix="otwatch-cost-") as tmp:
        n = [0]

        def inventory():
            n[0] += 1
            inv = open_inventory(os.path.join(tmp, f"inv{n[0]}.db"))
            for o in obs:
                (inv.observe_aggregates if type(o) is O.LinkAggregates else inv.note)(o)
            inv.close()

        el = best(inventory, a.repeat)
        print(f"inventory            {el:7.3f} s  {el / per * 1e6:6.2f} us/observation (aggregate rows counted)")

    from otwatch.sensor.alerts.analysis import OfflineAlerts
    from otwatch.sensor.report import Summary

    def feed(c) -> None:
        take = getattr(c, "observe_aggregates", None)
        for o in obs:
            (take if type(o) is O.LinkAggregates else c.observe)(o)

    el = best(lambda: feed(Summary(65536)), a.repeat)
    print(f"summary              {el:7.3f} s  {el / per * 1e6:6.2f} us/observation (aggregate rows counted)")

    def alerts():
        stage = OfflineAlerts(None, None, None, None)     # analyze's alert stage without a store
        for c in stage.consumers:
            feed(c)
        stage.finish()

    el = best(alerts, a.repeat)
    print(f"alert stage          {el:7.3f} s  {el / per * 1e6:6.2f} us/observation (aggregate rows counted)")

    def dump_all():
        with open(os.devnull, "w") as null:
            j = jsonout.JSONLines(null)
            for o in obs:
                (j.observe_aggregates if type(o) is O.LinkAggregates else j.observe)(o)

    el = best(dump_all, a.repeat)
    print(f"json lines           {el:7.3f} s  {el / per * 1e6:6.2f} us/observation (aggregate rows counted)")


if __name__ == "__main__":
    main()
