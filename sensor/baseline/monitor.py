"""Learn, then detect: one Pipeline consumer for a live sensor (or a long capture).

Contract: ``Monitor(baseline, sink, interval=60.0, window=LEARN_WINDOW, ...)``
learns while ``baseline.learning.status == "learning"`` and switches to
detection at the first ``IntervalEnd`` where the learner's stop rule is met
(nothing new for ``quiet`` intervals and at least ``min_duration`` learned,
learn.py) or ``window`` seconds of packet time have passed, whichever comes
first.  ``on_ready(baseline)`` is called once at the switch (the sensor saves the
baseline there: store.save_baseline).  A baseline that is already ``ready``
detects from the start.  Observations are never lost at the switch: the one that
ends learning is the last learned, the next is the first checked.
"""
from __future__ import annotations

from .detect import DetectSettings, Detector
from .learn import MIN_DURATION, QUIET_INTERVALS, Learner
from .model import Baseline

LEARN_WINDOW = 14 * 86400.0
"""Learning ends after two weeks of packet time at the latest (Defender for IoT's
typical learning period is two to six weeks; the stop rule usually ends it sooner)."""


class Monitor:
    def __init__(self, baseline: Baseline, sink, interval: float = 60.0, window: float = LEARN_WINDOW,
                 quiet: int = QUIET_INTERVALS, min_duration: float = MIN_DURATION, source: str = "",
                 settings: DetectSettings | None = None, on_ready=None) -> None:
        self.b = baseline
        self.window = window
        self.on_ready = on_ready
        self.learner = Learner(baseline, interval, quiet, min_duration) if baseline.learning.status == "learning" \
            else None
        self.detector = Detector(baseline, sink, source, settings)

    @property
    def learning(self) -> bool:
        return self.learner is not None

    def observe_aggregates(self, batch) -> None:
        (self.learner or self.detector).observe_aggregates(batch)

    def observe(self, obs) -> None:
        L = self.learner
        if L is None:
            self.detector.observe(obs)
            return
        L.observe(obs)
        if obs.type == "interval.end":
            lr = self.b.learning
            if L.stable or (lr.started_ts and lr.last_ts - lr.started_ts >= self.window):
                lr.status = "ready"
                self.learner = None
                if self.on_ready is not None:
                    self.on_ready(self.b)
