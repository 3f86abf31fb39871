#!/usr/bin/env python3
"""Cost of the segmentation-policy checker on a benchmark capture (docs/performance.md).

    python bench/make_capture.py --packets 400000 --out /tmp/mixed-400k.pcap
    python bench/policy_cost.py /tmp/mixed-400k.pcap [--repeat 3] [--impl compiled|pure]

Runs the pipeline over the capture with no consumer, then with a
``PolicyChecker`` for each of two policies drafted from the capture itself:

* ``allow-seen``: ``suggest_policy`` on everything (one zone per role), so every
  flow and operation is checked and allowed — the steady case;
* ``deny-some``: the same draft learned without the engineering workstations'
  and the IT hosts' traffic, so their flows and operations raise findings —
  the case with a finding stream.

Prints CPU seconds (best of ``--repeat``, process time), packets/s, the
checker's added cost per packet and per observation, findings, and the verdict
cache's hits and misses.  Not part of the test suite (timings).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--impl", default=None)
    a = ap.parse_args(argv)

    from otwatch.sensor.alerts.model import AlertSink
    from otwatch.sensor.pipeline import Pipeline, Settings
    from otwatch.sensor.policy import PolicyChecker, parse_policy, suggest_policy
    from otwatch.sensor.policy.observed import PairCollector

    settings = Settings(implementation=a.impl)

    class Count:
        def __init__(self):
            self.n = 0

        def observe(self, obs):
            self.n += 1

    class CountSink(AlertSink):
        def __init__(self):
            self.n = 0

        def raise_finding(self, f):
            self.n += 1

    def run(consumers):
        best = None
        for _ in range(a.repeat):
            cs = consumers()
            pipe = Pipeline(cs, settings)
            t0 = time.process_time()
            pipe.run_file(a.capture)
            pipe.finish()
            dt = time.process_time() - t0
            if best is None or dt < best[0]:
                best = (dt, cs, pipe.stats())
        return best

    collector = PairCollector()
    p = Pipeline([collector], settings)
    p.run_file(a.capture)
    p.finish()
    pairs = collector.seen()
    allow = parse_policy(suggest_policy(pairs))
    eng = {pp.client for pp in pairs if pp.protocol == "modbus" and "write" in pp.operations}
    it = {pp.client for pp in pairs if pp.protocol in ("tcp", "udp")}
    deny = parse_policy(suggest_policy([pp for pp in pairs if pp.client not in eng | it]))

    base_t, (cnt,), stats = run(lambda: [Count()])
    packets = stats["capture.packets"]
    print(f"capture: {a.capture}: {packets} packets, {cnt.n} observations, implementation "
          f"{Pipeline([], settings).implementation}")
    print(f"{'run':<12} {'cpu s':>7} {'packets/s':>11} {'added s':>8} {'ns/packet':>9} {'us/obs':>7} "
          f"{'findings':>8} {'hits':>8} {'misses':>7}")
    print(f"{'no policy':<12} {base_t:7.3f} {packets / base_t:11,.0f}")
    for name, pol in (("allow-seen", allow), ("deny-some", deny)):
        def mk(pol=pol):
            return [Count(), PolicyChecker(pol, CountSink())]
        t, (c2, ch), _ = run(mk)
        added = t - base_t
        st = ch.verdicts.stats()
        print(f"{name:<12} {t:7.3f} {packets / t:11,.0f} {added:8.3f} {added / packets * 1e9:9.0f} "
              f"{added / c2.n * 1e6:7.2f} {ch.sink.n:8d} {st['policy.verdict_cache_hits']:8d} "
              f"{st['policy.verdict_cache_misses']:7d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
