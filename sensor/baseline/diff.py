"""What two baselines disagree on: ``diff(a, b) -> Diff`` (commissioning acceptance: as built vs today).

Contract: both sides are reduced to their entries (``entries(b)``: the text
form ``accept``/``unlearn`` use, one per asset, pair, set value and coverage
table, plus one line per poll with its period rounded to ``PERIOD_DIGITS``
significant digits, so jitter alone does not differ); the result lists what
only ``a`` has and what only ``b`` has, sorted, and is empty when they agree.
Learning progress, first-seen times and rate bands are not compared.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import Baseline, entry_text

PERIOD_DIGITS = 2
POLL_MIN_INTERVALS = 3
"""A request is compared as a poll when present in at least this many learned intervals, every one."""


def entries(b: Baseline) -> set[str]:
    out = {entry_text("asset", ip) for ip in b.assets}
    for pk, p in b.pairs.items():
        out.add(entry_text("pair", pk))
        for name, vals in p.sets.items():
            for v in vals:
                out.add(entry_text("pair", pk, name, v))
        for table, cov in p.coverage.items():
            out.add(entry_text("pair", pk, "coverage", (table, tuple(cov))))
        for rid, st in p.timing.items():
            if st.n >= POLL_MIN_INTERVALS and st.lo > 0 and rid.startswith("request "):
                out.add(f"pair {pk.text()} poll {rid} every {float(f'{1 / st.mean:.{PERIOD_DIGITS}g}'):g} s")
    return out


@dataclass
class Diff:
    only_a: list
    only_b: list

    @property
    def same(self) -> bool:
        return not self.only_a and not self.only_b

    def lines(self, name_a: str = "A", name_b: str = "B") -> list[str]:
        return [f"- {e}" for e in self.only_a] + [f"+ {e}" for e in self.only_b]


def diff(a: Baseline, b: Baseline) -> Diff:
    ea, eb = entries(a), entries(b)
    return Diff(sorted(ea - eb), sorted(eb - ea))
