#!/usr/bin/env python3
"""What the baseline costs on top of the analysis: learn and detect on one capture, best of N.

    python bench/baseline_cost.py bench/out/mixed-400k.pcap [--rounds 3] [--interval 60]

Rows (each the best of ``--rounds`` runs, interleaved so a slow spell of the
machine hits every row alike): the pipeline with no consumer; with a
``Learner``; with a ``Detector`` holding the baseline learned from the same
capture (so it checks every fact and finds nothing: the steady-state cost);
and, for reference, the observation count.  Wall clock, one process, the
kernels ``otwatch version`` reports.  Then the baseline alone: the recorded
observations replayed into a fresh learner and detector (CPU time, best of
``--rounds``), which a busy machine disturbs far less than the end-to-end rows.  Short runs only (see docs/performance.md).
"""
from __future__ import annotations

import argparse
import sys
import time

from otwatch.sensor.alerts.model import ListSink
from otwatch.sensor.baseline.detect import Detector
from otwatch.sensor.baseline.learn import Learner
from otwatch.sensor.baseline.model import Baseline
from otwatch.sensor.pipeline import Pipeline, Settings


class _Count:
    def __init__(self):
        self.n = 0

    def observe(self, obs):
        self.n += 1


class _Record:
    def __init__(self):
        self.obs = []

    def observe(self, obs):
        self.obs.append(obs)


def replay(observations, make, rounds: int) -> float:
    """Best CPU time of feeding the recorded observations to a fresh consumer: the baseline alone."""
    best = float("inf")
    for _ in range(rounds):
        c = make()
        t = time.process_time()
        for o in observations:
            c.observe(o)
        best = min(best, time.process_time() - t)
    return best


def timed(path: str, consumers, interval: float):
    pipe = Pipeline(consumers, Settings(interval=interval))
    t = time.perf_counter()
    pipe.run_file(path)
    pipe.finish()
    return time.perf_counter() - t, pipe.stats()["capture.packets"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=60.0)
    a = ap.parse_args()
    learned = Baseline()
    count = _Count()
    rec = _Record()
    timed(a.capture, [Learner(learned, a.interval), count, rec], a.interval)
    best = {}
    packets = 0
    for _ in range(a.rounds):
        for name, make in (("analysis only", lambda: [_Count()]),
                           ("+ learn", lambda: [Learner(Baseline(), a.interval)]),
                           ("+ detect", lambda: [Detector(learned, ListSink(), "bench")])):
            s, packets = timed(a.capture, make(), a.interval)
            best[name] = min(best.get(name, s), s)
    base = best["analysis only"]
    print(f"{a.capture}: {packets:,} packets, {count.n:,} observations, "
          f"{len(learned.pairs)} pairs / {learned.entry_count()} entries learned")
    for name, s in best.items():
        extra = s - base
        print(f"{name:14s} {s:7.3f} s  {packets / s / 1e6:6.3f} M packets/s  "
              f"+{extra:6.3f} s ({extra / base * 100:5.1f} %)  {extra / max(count.n, 1) * 1e6:6.2f} µs/observation")
    n = len(rec.obs)
    for name, make in (("learn alone", lambda: Learner(Baseline(), a.interval)),
                       ("detect alone", lambda: Detector(learned, ListSink(), "bench"))):
        s = replay(rec.obs, make, a.rounds)
        print(f"{name:14s} {s:7.3f} s CPU over {n:,} recorded observations: {s / n * 1e6:6.2f} µs/observation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
