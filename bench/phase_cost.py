#!/usr/bin/env python3
"""Where the CPU time of one ``otwatch analyze`` goes, stage by stage, the command line itself run.

    python bench/phase_cost.py bench/out/mixed-1600000.pcap [--repeat 3] [--no-inventory]

Each round is a fresh process (``taskset -c 1`` when there is a CPU 1) running ``otwatch analyze -q
--db NEW FILE`` through ``sensor.cli.main`` with process-time accumulators wrapped around the
stages: the chunk reads, the engine's ``feed`` (what ``run_file`` spends outside the reads and the
record drain), ``Pipeline._drain`` and, inside it, every consumer's ``observe``/``observe_aggregates``,
the decoders and the inventory's flushes; start-up is everything before ``run_file``, the end
everything after it.  Prints the per-stage minimum over the rounds (CPU s).

The wrappers cost ~1 us a call: about 0.1 s on bench's steady plant, most of it charged to the
"pipeline" row (three consumer calls per observation); compare rows between builds, and take the
whole-run figure from an unwrapped run (``/usr/bin/time``).  ``PYTHONDONTWRITEBYTECODE`` is
honoured as set: with it and no ``__pycache__``, start-up includes compiling otwatch's sources.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

CHILD = r'''
import collections, json, sys, time
T0 = time.process_time()
acc = collections.Counter()
stamp = {}

def wrap(owner, name, label):
    f = getattr(owner, name)
    pt = time.process_time

    def w(*a, **k):
        t = pt()
        try:
            return f(*a, **k)
        finally:
            acc[label] += pt() - t
    setattr(owner, name, w)

from otwatch.sensor import cli, pipeline, source, report
from otwatch.sensor.alerts import stage
from otwatch.sensor.inventory import store

wrap(source.ChunkReader, "fill", "read")
wrap(pipeline.Pipeline, "_drain", "drain")
wrap(pipeline.Decoders, "decode", "decode")
wrap(pipeline.Decoders, "module", "decode")
for cls, label in ((store.Inventory, "inventory"), (stage.AlertStage, "alerts"), (report.Summary, "summary")):
    wrap(cls, "observe", label)
    if hasattr(cls, "observe_aggregates"):
        wrap(cls, "observe_aggregates", label)
flush = store.Inventory.flush

def timed_flush(self, *a, **k):     # the flushes inside the run (the last one, after it, is in "end")
    t = time.process_time()
    try:
        return flush(self, *a, **k)
    finally:
        if "in" in stamp and "out" not in stamp:
            acc["flush"] += time.process_time() - t
store.Inventory.flush = timed_flush
run_file = pipeline.Pipeline.run_file

def timed_run_file(self, *a, **k):
    stamp.setdefault("in", time.process_time())
    try:
        return run_file(self, *a, **k)
    finally:
        stamp["out"] = time.process_time()
pipeline.Pipeline.run_file = timed_run_file
sys.argv = ["otwatch"] + sys.argv[1:]
try:
    cli.main()
except SystemExit:
    pass
acc["total"] = time.process_time()
acc["interpreter"] = T0
acc["setup"] = stamp["in"] - T0
acc["end"] = acc["total"] - stamp["out"]
acc["run_file"] = stamp["out"] - stamp["in"]
print("PHASES " + json.dumps(acc), file=sys.stderr)
'''

ROWS = [
    ("interpreter start (before otwatch's first import)", lambda g: g("interpreter")),
    ("start-up: imports, database created and migrated, consumers", lambda g: g("setup")),
    ("pcap reader (readinto into the 4 MiB buffer)", lambda g: g("read")),
    ("engine + kernels (feed: records, L2-L4, flows, TCP, kernels, tallies)",
     lambda g: g("run_file") - g("drain") - g("read")),
    ("pipeline: records -> observations (+ wrapper overhead)",
     lambda g: g("drain") - g("inventory") - g("alerts") - g("summary") - g("decode")),
    ("decoders: imported on first use, full decode of first messages", lambda g: g("decode")),
    ("inventory: observations into memory", lambda g: g("inventory") - g("flush")),
    ("inventory: interval flushes (SQLite)", lambda g: g("flush")),
    ("alert stage", lambda g: g("alerts")),
    ("summary", lambda g: g("summary")),
    ("end: engine finish, last flush, runs row, close", lambda g: g("end")),
    ("total", lambda g: g("total")),
]


def one(file: str, no_inventory: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="otwatch-phase-") as tmp:
        args = ["analyze", "-q"] + (["--no-inventory"] if no_inventory else ["--db", os.path.join(tmp, "inv.db")])
        cmd = [sys.executable, "-c", CHILD] + args + [file]
        if os.path.exists("/usr/bin/taskset") and os.cpu_count() and os.cpu_count() > 1:
            cmd = ["/usr/bin/taskset", "-c", "1"] + cmd
        err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    line = [x for x in err.splitlines() if x.startswith("PHASES ")][-1]
    return json.loads(line[len("PHASES "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-inventory", action="store_true")
    a = ap.parse_args()
    runs = [collections.defaultdict(float, one(a.file, a.no_inventory)) for _ in range(a.repeat)]
    print(f"| stage (CPU s, best of {a.repeat}) | {os.path.basename(a.file)} |")
    print("|---|---:|")
    for name, fn in ROWS:
        print(f"| {name} | {min(fn(r.__getitem__) for r in runs):.3f} |")


if __name__ == "__main__":
    main()
