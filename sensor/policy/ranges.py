"""``RangeSet``: a sorted, merged set of closed integer ranges (ports, units, codes, addresses).

Written in a policy as a list of integers and ``"lo-hi"`` strings
(``[502, 5020-5030]``); ``contains`` and ``covers`` are binary searches.
"""
from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RangeSet:
    spans: tuple          # ((lo, hi), ...) sorted, non-overlapping, non-adjacent
    _los: tuple = ()

    @classmethod
    def of(cls, spans) -> "RangeSet":
        merged: list[list[int]] = []
        for lo, hi in sorted(spans):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        t = tuple((a, b) for a, b in merged)
        return cls(t, tuple(a for a, _ in t))

    def _span(self, x: int):
        i = bisect_right(self._los, x) - 1
        return self.spans[i] if i >= 0 else None

    def contains(self, x: int) -> bool:
        s = self._span(x)
        return s is not None and x <= s[1]

    def covers(self, lo: int, hi: int) -> bool:
        """Is every value of [lo, hi] in the set (spans are merged, so one span must hold it)?"""
        s = self._span(lo)
        return s is not None and hi <= s[1]

    def __contains__(self, x: int) -> bool:
        return self.contains(x)

    def text(self) -> str:
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.spans) or "(none)"


__all__ = ["RangeSet"]
