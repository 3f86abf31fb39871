#!/usr/bin/env python3
"""Where the time goes: one capture through successively more of otwatch, in one process.

    python bench/stages.py FILE [--impl compiled|pure]

Stages (CPU seconds of this process, each on a fresh engine):

  read      the source's read loop alone (open, read 4 MiB chunks into one reused buffer)
  engine    + engine kernel with no protocol kernels (record walk, L2-L4, flows, hosts;
            OT flows are plain TCP flows), records drained and dropped
  kernels   + the three protocol kernels (reassembly, framing, keys, tallies),
            records drained and dropped
  pipeline  + sensor/pipeline.py turning records into observations (full decode of
            new keys, describe, aggregates), no consumers
  summary   + the Summary consumer (what `otwatch analyze -q --no-inventory` runs)
  inventory + the inventory consumer writing a new SQLite database (what `otwatch
            analyze -q` runs: the issue's "end to end")

Prints one JSON object.  Run by bench/run.py; usable alone.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--impl", choices=("compiled", "pure"), default=None)
    ap.add_argument("--repeat", type=int, default=1, help="runs per stage; the fastest counts")
    a = ap.parse_args()

    from otwatch import ext
    from otwatch.parsers.limits import DEFAULT_LIMITS
    from otwatch.sensor.pipeline import Pipeline, Settings
    from otwatch.sensor.report import Summary
    from otwatch.sensor.source import ChunkReader, open_capture

    impl = a.impl or ext.IMPLEMENTATION
    out: dict = {"implementation": impl}

    def walk(eng) -> int:
        """What Pipeline.run_file does, with the records counted and dropped."""
        stream, _ = open_capture(a.file)
        n = 0
        with stream:
            r = ChunkReader(stream)
            while r.fill():
                r.consume(eng.feed(r.buf, False, r.end))
                n += len(eng.take())
            eng.feed(r.buf, True, r.end)
        eng.finish()
        return n + len(eng.take())

    def timed(fn):
        best = None
        for _ in range(a.repeat):
            t = time.process_time()
            r = fn()
            el = time.process_time() - t
            best = el if best is None or el < best else best
        return best, r

    def read_all():
        stream, _ = open_capture(a.file)
        n = 0
        with stream:
            r = ChunkReader(stream)
            while r.fill():
                n += r.end
                r.consume(r.end)
        return n

    out["read"], out["file_bytes"] = timed(read_all)

    E = ext.load("engine", impl)

    def engine_only():
        eng = E.Engine({}, DEFAULT_LIMITS, {}, {}, False, 60.0)
        n = walk(eng)
        return n, eng.stats()["capture.packets"]

    out["engine"], (out["engine_records"], out["packets"]) = timed(engine_only)

    def with_kernels():
        return walk(Pipeline([], Settings(implementation=impl)).engine)

    out["kernels"], out["kernel_records"] = timed(with_kernels)

    def pipeline(consumers):
        def run():
            p = Pipeline(consumers(), Settings(implementation=impl))
            p.run_file(a.file)
            p.finish()
            return p.counts["observations"]
        return run

    out["pipeline"], out["observations"] = timed(pipeline(lambda: []))
    out["summary"], _ = timed(pipeline(lambda: [Summary()]))

    from otwatch.sensor.inventory.store import open_inventory

    with tempfile.TemporaryDirectory(prefix="otwatch-stages-") as tmp:
        made = []

        def with_inventory():
            inv = open_inventory(os.path.join(tmp, f"inv{len(made)}.db"))   # a new database each run
            made.append(inv)
            return [Summary(), inv]

        def run_inventory():
            n = pipeline(with_inventory)()
            made[-1].close()
            return n

        out["inventory"], _ = timed(run_inventory)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
