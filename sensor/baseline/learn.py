"""Learning: a Pipeline consumer that fills a ``Baseline`` from observations.

Contract
--------
``Learner(baseline, interval=60.0)`` is added to ``Pipeline(consumers)`` (the
same ``interval`` as ``Settings.interval``).  ``observe(obs)`` adds every
learnable fact (``facts.py``) to the model and counts how many were new; at
each ``IntervalEnd`` it appends that count to the **learning curve**
(``baseline.learning.curve``), folds the interval's message counts into the
timing statistics, and applies the **stop rule**:

    learning is done when no new entry has appeared for ``quiet`` consecutive
    intervals (default 120: two hours of one-minute intervals) and at least
    ``min_duration`` seconds of packet time have been learned (default 4 h).

``stable`` tells whether the rule is met; a live sensor switches to detection
then (``monitor.py``).  ``otwatch baseline learn FILE...`` learns from whole
captures: the capture *is* the window, so the baseline is ready afterwards
and ``status`` says whether the rule was met inside it.  Learning continues
where a stored baseline left off (counts, curve, timing).

Timing: for each pair, each request tracked (``timing.MAX_TIMING_KEYS``) gets
one rate sample per full interval after the interval it first appeared in
(0 when absent), so a request present in every sample is a poll; the pair's
total rate gets one sample per full interval from its first.
"""
from __future__ import annotations

from .facts import FactReader
from .model import CURVE_KEEP, AssetProfile, Baseline, PairProfile, RateStats
from .timing import IntervalCounts, is_full

QUIET_INTERVALS = 120
"""Intervals without anything new before learning ends by itself (Defender and Nozomi stop
learning when new traffic falls off; two hours of one-minute intervals covers hourly jobs twice)."""
MIN_DURATION = 4 * 3600.0
"""Packet time learned at the least before the stop rule may end learning (shift-long jobs)."""


class Learner:
    def __init__(self, baseline: Baseline, interval: float = 60.0, quiet: int = QUIET_INTERVALS,
                 min_duration: float = MIN_DURATION) -> None:
        self.b = baseline
        baseline.interval = interval
        self.quiet_needed = quiet
        self.min_duration = min_duration
        self.reader = FactReader()
        self.counts = IntervalCounts()
        self.new = 0              # new entries in the current interval
        self._fresh: set = set()  # (pair, request id) first seen this interval: no sample yet
        self._fresh_pairs: set = set()

    # -- the consumer ---------------------------------------------------------
    def observe_aggregates(self, batch) -> None:
        """A link's aggregates in bulk (``LinkAggregates``): counted as one by one."""
        self.counts.add_all(batch)

    def observe(self, obs) -> None:
        t = obs.type
        if t == "aggregate":
            self.counts.add(obs)
            return
        if t == "interval.end":
            self._interval(obs.start_ts, obs.end_ts)
            return
        ts = getattr(obs, "ts", None)
        if ts is not None:
            L = self.b.learning
            if not L.started_ts:
                L.started_ts = ts
            if ts > L.last_ts:
                L.last_ts = ts
        for f in self.reader.read(obs):
            self.learn(f)

    @property
    def stable(self) -> bool:
        L = self.b.learning
        return L.quiet >= self.quiet_needed and L.last_ts - L.started_ts >= self.min_duration

    # -- facts ------------------------------------------------------------------
    def _asset(self, ip: str, ts: float) -> AssetProfile:
        a = self.b.assets.get(ip)
        if a is None:
            a = self.b.assets[ip] = AssetProfile(first_ts=ts)
            self.new += 1
        return a

    def _pair(self, pk, ts: float) -> PairProfile:
        p = self.b.pairs.get(pk)
        if p is None:
            p = self.b.pairs[pk] = PairProfile(first_ts=ts)
            self._fresh_pairs.add(pk)
            self.new += 1
            self._asset(pk.client, ts)
            self._asset(pk.server, ts)
        return p

    def learn(self, f) -> None:
        k = f.kind
        if k == "set":
            vals = self._pair(f.pair, f.ts).values(f.field)
            if f.value not in vals:
                vals.add(f.value)
                self.new += 1
        elif k == "coverage":
            from .intervals import IntervalSet

            cov = self._pair(f.pair, f.ts).coverage
            s = cov.get(f.field)
            if s is None:
                s = cov[f.field] = IntervalSet()
            if s.add(*f.value):
                self.new += 1
        elif k == "pair":
            p = self._pair(f.pair, f.ts)
            if f.flow_id:
                p.flows += 1
        elif k == "asset":
            a = self._asset(f.value, f.ts)
            if f.field:
                a.macs.add(f.field)
        elif k == "identity":
            ip, name, value = f.value
            a = self._asset(ip, f.ts)
            if a.identity.get(name) != value:
                a.identity[name] = value
                self.new += 1
        elif k == "certificate":
            ip, thumb = f.value
            a = self._asset(ip, f.ts)
            if thumb not in a.certificates:
                a.certificates.add(thumb)
                self.new += 1

    # -- intervals ----------------------------------------------------------------
    def _interval(self, start: float, end: float) -> None:
        per_key, per_pair = self.counts.take()
        self.counts.take_frames()     # evidence is the detector's
        if is_full(start, end, self.b.interval):
            length = end - start
            for pk, prof in self.b.pairs.items():
                keys = per_key.get(pk, {})
                for rid, n in keys.items():
                    if rid not in prof.timing:
                        prof.timing[rid] = RateStats()
                        self._fresh.add((pk, rid))
                for rid, st in prof.timing.items():
                    if (pk, rid) not in self._fresh:
                        st.add(keys.get(rid, 0) / length)
                if pk not in self._fresh_pairs:
                    prof.rate.add(per_pair.get(pk, 0) / length)
            self._fresh.clear()
            self._fresh_pairs.clear()
        L = self.b.learning
        L.intervals += 1
        L.curve.append(self.new)
        if len(L.curve) > CURVE_KEEP:
            del L.curve[: len(L.curve) - CURVE_KEEP]
        L.quiet = L.quiet + 1 if self.new == 0 else 0
        if end > L.last_ts:
            L.last_ts = end
        self.new = 0
