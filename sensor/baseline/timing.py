"""Per-interval message counts per pair and per request: what timing is learned and checked from.

Contract: ``IntervalCounts.add(aggregate)`` adds one ``Aggregate`` observation's
``interval_count`` under its pair and request id; ``take()`` hands back the
interval's counts and starts the next.  ``is_full(start, end, nominal)`` says
whether an interval is long enough to learn or judge a rate from: the engine's
last interval ends at the last packet and is usually short, and a rate measured
over a few seconds says nothing.

Only what the client sends is tracked per request (its answers follow it);
the pair's total counts both directions.  A request id is ``"<direction> <kind> <target>"`` (``"request
modbus.read_coils unit=1/coils/0+16"``): the same text in every run, unlike
the kernel's link ids.
"""
from __future__ import annotations

from .model import PairKey

FULL_FRACTION = 0.9
"""An interval shorter than this fraction of the nominal one is not used for timing."""
MAX_TIMING_KEYS = 256
"""Requests tracked per pair: polls are a handful per pair; the rest is counted in the pair's rate."""


def request_id(obs) -> str:
    return f"{obs.direction} {obs.kind} {obs.target}"


def is_full(start: float, end: float, nominal: float) -> bool:
    return end - start >= FULL_FRACTION * nominal


class IntervalCounts:
    """Also the evidence of the interval's counts: ``last[pk]`` and ``last[(pk, rid)]`` are the (frame, time) of
    the latest message of the pair and of each tracked request in the interval (the aggregates' ``last_frame``),
    handed back by ``take_frames()`` with the counts' ``take()``."""

    def __init__(self) -> None:
        self.per_key: dict[PairKey, dict[str, int]] = {}
        self.per_pair: dict[PairKey, int] = {}
        self.last: dict = {}

    def _latest(self, k, a) -> None:
        f = self.last.get(k)
        if f is None or a.last_ts >= f[1]:
            self.last[k] = (a.last_frame, a.last_ts)

    def add(self, a) -> None:
        pk = PairKey(a.client, a.server, a.protocol, a.server_port)
        n = a.interval_count
        self.per_pair[pk] = self.per_pair.get(pk, 0) + n
        self._latest(pk, a)
        if a.direction != "request":
            return      # a poll is the client's; its answers only count in the pair's rate
        d = self.per_key.get(pk)
        if d is None:
            d = self.per_key[pk] = {}
        rid = request_id(a)
        if rid in d or len(d) < MAX_TIMING_KEYS:
            d[rid] = d.get(rid, 0) + n
            self._latest((pk, rid), a)

    def add_all(self, batch) -> None:
        """Every ``Aggregate`` of a ``LinkAggregates`` (observations), in order."""
        for a in batch.each():
            self.add(a)

    def take(self) -> tuple[dict, dict]:
        out = self.per_key, self.per_pair
        self.per_key, self.per_pair = {}, {}
        return out

    def take_frames(self) -> dict:
        out, self.last = self.last, {}
        return out
