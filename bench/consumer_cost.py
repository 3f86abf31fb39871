#!/usr/bin/env python3
"""What the whole consumer stage (policy + alerts + baseline detection) costs, against the analysis itself.

    python bench/make_capture.py --packets 400000 --out bench/out/mixed-400k.pcap
    python bench/consumer_cost.py bench/out/mixed-400k.pcap [--rounds 3] [--analyze]

Extends bench/policy_cost.py (the checker alone) and bench/baseline_cost.py (learner and detector alone)
to the stage ``otwatch analyze --policy P --baseline B`` runs after the inventory.  Two cases per capture:

* **steady**: the policy is drafted from the whole capture (``suggest_policy``: everything checked, all
  allowed) and the baseline learned from the whole capture (every fact checked, nothing new);
* **first half**: both come from the capture's first half only, so whatever is new in the second half
  (on varied traffic: many registers, topics and nodes) goes down the finding path into the alert book.

Replay rows (CPU time, best of ``--rounds``): the observations of one pass are recorded, then fed to a
fresh stage each round: ``alerts`` (the AlertStage: scans, logins, anomalies, book flushes, no store),
``+ policy``, ``+ baseline``, ``all``.  Printed per observation and per packet, with the analysis itself
(the pipeline with a no-op consumer, CPU) for scale, and the findings and alerts each produced.

``--analyze`` adds end-to-end rows: ``python -m otwatch.sensor analyze CAPTURE -q --db NEW`` with no
option, ``--policy``, ``--baseline`` and both (the steady policy and baseline written to a temporary
directory), child CPU time (user + sys), best of ``--rounds``, interleaved.  Not part of the test suite.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


sys.path.insert(0, HERE)
from baseline_cost import _Count, _Record  # noqa: E402  (the counting and recording consumers)


class _Split:
    """Pass observations to *inner* while their time is before *cut* (the first half of a capture)."""

    def __init__(self, inner, cut: float):
        self.inner, self.cut = inner, cut

    def observe(self, obs):
        ts = getattr(obs, "ts", None)
        if ts is None:
            ts = getattr(obs, "end_ts", None) or getattr(obs, "first_ts", None) or 0.0
        if ts < self.cut:
            self.inner.observe(obs)


def _stage(policy, baseline, which: str):
    """Fresh consumers of the stage as analyze builds it (minus inventory and store): (consumers, book)."""
    from otwatch.sensor.alerts.analysis import OfflineAlerts
    from otwatch.sensor.alerts.settings import AlertSettings
    from otwatch.sensor.baseline.detect import Detector
    from otwatch.sensor.policy import PolicyChecker

    alerts = OfflineAlerts(AlertSettings.from_policy(policy) if "policy" in which else AlertSettings())
    alerts.start_file("bench", 0)
    if "policy" in which:
        alerts.add_producer(PolicyChecker(policy, alerts.sink))
    if "baseline" in which:
        alerts.add_producer(Detector(baseline, alerts.sink, "bench"))
    return alerts


def replay(observations, make, rounds: int):
    best, last = float("inf"), None
    for _ in range(rounds):
        alerts = make()
        consumers = alerts.consumers
        t = time.process_time()
        for o in observations:
            for c in consumers:
                c.observe(o)
        alerts.finish()
        best = min(best, time.process_time() - t)
        last = alerts
    return best, last


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def analyze_rows(capture: str, policy_text: str, baseline, rounds: int) -> None:
    from otwatch.sensor.baseline.store import save_baseline

    tmp = tempfile.mkdtemp(prefix="consumer-cost-")
    pol = os.path.join(tmp, "policy.yaml")
    with open(pol, "w", encoding="utf-8") as f:
        f.write(policy_text)
    bl = save_baseline(baseline, os.path.join(tmp, "baseline.yaml"))
    variants = (("analyze", []), ("--policy", ["--policy", pol]), ("--baseline", ["--baseline", bl]),
                ("both", ["--policy", pol, "--baseline", bl]))
    best: dict = {}
    env = dict(os.environ, OTWATCH_BASELINE=os.path.join(tmp, "unused.yaml"))
    for r in range(rounds):
        for name, extra in variants:
            db = os.path.join(tmp, f"inv-{r}-{name.strip('-')}.db")
            c0, w0 = _children_cpu(), time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "otwatch.sensor", "analyze", capture, "-q", "--db", db,
                                *extra], env=env, capture_output=True, text=True)
            cpu, wall = _children_cpu() - c0, time.perf_counter() - w0
            if p.returncode not in (0, 1):
                print(f"{name}: exit {p.returncode}: {p.stderr.strip()[:400]}")
                return
            b = best.get(name)
            if b is None or cpu < b[0]:
                best[name] = (cpu, wall)
    base = best["analyze"][0]
    print(f"\nend to end: python -m otwatch.sensor analyze CAPTURE -q --db NEW [...], child CPU best of {rounds}")
    for name, _ in variants:
        cpu, wall = best[name]
        print(f"  {name:<11} {cpu:7.3f} s CPU  {wall:7.3f} s wall  +{cpu - base:6.3f} s ({(cpu - base) / base * 100:5.1f} %)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("capture")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=float, default=60.0)
    ap.add_argument("--analyze", action="store_true", help="also time `otwatch analyze` end to end")
    a = ap.parse_args(argv)

    from otwatch.sensor.baseline.learn import Learner
    from otwatch.sensor.baseline.model import Baseline
    from otwatch.sensor.pipeline import Pipeline, Settings
    from otwatch.sensor.policy import parse_policy, suggest_policy
    from otwatch.sensor.policy.observed import PairCollector

    settings = Settings(interval=a.interval)
    rec, count = _Record(), _Count()
    pipe = Pipeline([rec, count], settings)
    pipe.run_file(a.capture)
    pipe.finish()
    packets = pipe.stats()["capture.packets"]
    obs = rec.obs
    times = [t for t in (getattr(o, "ts", None) for o in obs) if t]
    cut = (min(times) + max(times)) / 2
    analysis = float("inf")
    for _ in range(a.rounds):
        p = Pipeline([_Count()], settings)
        t = time.process_time()
        p.run_file(a.capture)
        p.finish()
        analysis = min(analysis, time.process_time() - t)

    cases = {}
    for case, keep in (("steady", None), ("first half", cut)):
        b, col = Baseline(), PairCollector()
        learner = Learner(b, a.interval)
        for o in obs:
            if keep is None:
                learner.observe(o)
                col.observe(o)
        if keep is not None:
            split_l, split_c = _Split(learner, keep), _Split(col, keep)
            for o in obs:
                split_l.observe(o)
                split_c.observe(o)
        text = suggest_policy(col.seen())
        cases[case] = (parse_policy(text), b, text)

    print(f"{a.capture}: {packets:,} packets, {len(obs):,} observations; analysis alone {analysis:.3f} s CPU "
          f"({packets / analysis / 1e6:.2f} M packets/s, pipeline with a no-op consumer, best of {a.rounds})")
    print(f"{'case':<11} {'stage':<11} {'CPU s':>7} {'us/obs':>7} {'ns/packet':>9} {'of analysis':>11} "
          f"{'findings':>9} {'alerts':>7}")
    for case, (policy, baseline, _) in cases.items():
        for which in ("alerts", "+ policy", "+ baseline", "all policy baseline"):
            t, alerts = replay(obs, lambda: _stage(policy, baseline, which), a.rounds)
            label = "all" if which.startswith("all") else which
            print(f"{case:<11} {label:<11} {t:7.3f} {t / len(obs) * 1e6:7.2f} {t / packets * 1e9:9.0f} "
                  f"{t / analysis * 100:10.1f}% {alerts.book.counts['findings']:9,d} {len(alerts.by_id):7,d}")
    if a.analyze:
        policy, baseline, text = cases["steady"]
        analyze_rows(a.capture, text, baseline, a.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
