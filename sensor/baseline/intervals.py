"""Sets of integer addresses kept as sorted, disjoint, inclusive ranges (register coverage).

Contract: ``IntervalSet.add(lo, hi)`` merges ``[lo, hi]`` in (adjacent ranges
join: 0-9 and 10-19 become 0-19); ``covers(lo, hi)`` says whether every address
of ``[lo, hi]`` is inside; ``missing(lo, hi)`` lists the parts that are not.
The text form (``"0-9,100-103"``, a single address as ``"7"``) is what the YAML
export writes and ``parse`` reads back, so export → import → export is identical.

Bounded: at most ``MAX_RANGES`` ranges; past it the two ranges with the smallest
gap between them are joined (coverage grows coarser, never lost) and
``coarsened`` counts how often — a set that needs thousands of ranges is a
sweep, which the detector reports on its own.
"""
from __future__ import annotations

import bisect

MAX_RANGES = 1024
"""Ranges kept per set: a real HMI reads tens of blocks per table; 1,024 leaves room
for a historian reading scattered tags without letting a sweep grow the model."""


class IntervalSet:
    __slots__ = ("_lo", "_hi", "coarsened")

    def __init__(self, ranges=()):
        self._lo: list[int] = []
        self._hi: list[int] = []
        self.coarsened = 0
        for lo, hi in ranges:
            self.add(lo, hi)

    def __len__(self) -> int:
        return len(self._lo)

    def __iter__(self):
        return iter(zip(self._lo, self._hi))

    def __eq__(self, other) -> bool:
        return isinstance(other, IntervalSet) and self._lo == other._lo and self._hi == other._hi

    def __repr__(self) -> str:
        return f"IntervalSet({self.text()!r})"

    def copy(self) -> "IntervalSet":
        c = IntervalSet()
        c._lo, c._hi, c.coarsened = list(self._lo), list(self._hi), self.coarsened
        return c

    def add(self, lo: int, hi: int) -> bool:
        """Merge [lo, hi]; True when an address was not covered before."""
        if hi < lo:
            lo, hi = hi, lo
        if self.covers(lo, hi):
            return False
        los, his = self._lo, self._hi
        i = bisect.bisect_left(his, lo - 1)          # first range that ends at or after lo-1
        j = bisect.bisect_right(los, hi + 1)         # ranges before j start at or before hi+1
        if i < j:
            lo = min(lo, los[i])
            hi = max(hi, his[j - 1])
        los[i:j] = [lo]
        his[i:j] = [hi]
        if len(los) > MAX_RANGES:
            self._coarsen()
        return True

    def _coarsen(self) -> None:
        los, his = self._lo, self._hi
        gaps = [los[k + 1] - his[k] for k in range(len(los) - 1)]
        k = gaps.index(min(gaps))
        his[k] = his[k + 1]
        del los[k + 1], his[k + 1]
        self.coarsened += 1

    def covers(self, lo: int, hi: int) -> bool:
        i = bisect.bisect_right(self._lo, lo) - 1
        return i >= 0 and self._hi[i] >= hi

    def missing(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of [lo, hi] not in the set, in order."""
        out = []
        cur = lo
        i = max(bisect.bisect_right(self._lo, lo) - 1, 0)
        while cur <= hi and i < len(self._lo):
            a, b = self._lo[i], self._hi[i]
            if b < cur:
                i += 1
                continue
            if a > hi:
                break
            if a > cur:
                out.append((cur, a - 1))
            cur = b + 1
            i += 1
        if cur <= hi:
            out.append((cur, hi))
        return out

    def remove(self, lo: int, hi: int) -> None:
        keep = []
        for a, b in self:
            if b < lo or a > hi:
                keep.append((a, b))
                continue
            if a < lo:
                keep.append((a, lo - 1))
            if b > hi:
                keep.append((hi + 1, b))
        self._lo = [a for a, _ in keep]
        self._hi = [b for _, b in keep]

    def text(self) -> str:
        return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in self)

    @classmethod
    def parse(cls, text: str) -> "IntervalSet":
        """Read ``text()``'s form; ValueError on anything else."""
        s = cls()
        text = str(text).strip()
        if not text:
            return s
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, part)
                lo, hi = int(a), int(b)
            else:
                lo = hi = int(part)
            if lo < 0 or hi < lo:
                raise ValueError(f"bad range {part!r}")
            s.add(lo, hi)
        return s
