"""Two writers, one inventory: a row merged with what another process stored since this one last saw it.

Contract
--------
``merge_row(table, mine, stored, base)`` changes *mine* (a row in memory, about to be written) so that it
holds the work of both writers; *stored* is the row as the database has it now (read inside the write
transaction, so nobody can change it before the write), *base* the row as this writer last read or wrote
it (None when it never saw it: another writer created it meanwhile).  All three are decoded rows (JSON
columns as dicts and lists).  Pure: no database, no clock.

The rules, per column, are declared in ``model.MERGE``:

* ``sum`` (counters): mine + (stored - base): each writer adds only what it counted itself, so two
  ``analyze`` of one capture count every packet twice, as two runs one after the other do;
* ``tally`` (JSON counters, e.g. ``peers.ops``, ``assets.behaviour``): the same for every number inside,
  recursively; lists are united (``model.SORTED_LISTS`` kept sorted); the numbers in ``model.DISTINCT_COUNTS`` count distinct things (topics
  published) and take the larger instead;
* ``first``: the earlier ``first_seen`` (0 = unknown) and its evidence (frame, capture) with it;
  ``last``: the later ``last_seen`` and what goes with it;
* ``max``: flags and confidences (with the reason that goes with a confidence);
* ``fill``: mine, unless empty;
* identity (``identity``): the value seen last wins with its evidence; when both writers first saw the
  attribute with different values that is one change more (as the second of two runs would record);
* everything else: mine (this writer's latest view).
"""
from __future__ import annotations

from typing import Any

from .model import DISTINCT_COUNTS, MERGE, SORTED_LISTS


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def merge_tally(mine: Any, stored: Any, base: Any, key: str = "") -> Any:
    """Numbers: mine + stored - base; dicts: per key; lists: united (mine, then what only stored has;
    sorted for the keys in ``SORTED_LISTS``); else mine unless empty."""
    if _num(mine) or _num(stored):
        m = mine if _num(mine) else 0
        s = stored if _num(stored) else 0
        b = base if _num(base) else 0
        return m + s - b
    if isinstance(mine, dict) or isinstance(stored, dict):
        m = mine if isinstance(mine, dict) else {}
        s = stored if isinstance(stored, dict) else {}
        b = base if isinstance(base, dict) else {}
        out = dict(m)
        for k, sv in s.items():
            if k in DISTINCT_COUNTS and (_num(sv) or _num(m.get(k))):
                out[k] = max(m.get(k) or 0, sv or 0)
            else:
                out[k] = merge_tally(m.get(k), sv, b.get(k), k)
        if "refused" in out and isinstance(out["refused"], list):
            out["refused_ports"] = len(out["refused"])
        return out
    if isinstance(mine, list) or isinstance(stored, list):
        m = mine if isinstance(mine, list) else []
        out = list(m)
        seen = set(map(repr, m))
        for v in stored if isinstance(stored, list) else []:
            if repr(v) not in seen:
                seen.add(repr(v))
                out.append(v)
        if key in SORTED_LISTS:
            try:
                out.sort()
            except TypeError:
                pass
        return out
    return mine if mine not in (None, "") else stored


def _earlier(a: Any, b: Any) -> bool:
    """*a* is an earlier known time than *b* (0/None: unknown, never earlier)."""
    return bool(a) and (not b or a < b)


def merge_row(table: str, mine: dict, stored: dict, base: dict | None) -> None:
    rules = MERGE.get(table, {})
    b = base or {}
    for c in rules.get("sum", ()):
        mine[c] = (mine.get(c) or 0) + (stored.get(c) or 0) - (b.get(c) or 0)
    for c in rules.get("tally", ()):
        mine[c] = merge_tally(mine.get(c) or {}, stored.get(c) or {}, b.get(c) or {})
    if table == "identity":
        _identity(mine, stored, base)
    else:
        first = rules.get("first", ())
        if first and _earlier(stored.get(first[0]), mine.get(first[0])):
            for c in first:
                mine[c] = stored.get(c)
        last = rules.get("last", ())
        if last and (stored.get(last[0]) or 0) > (mine.get(last[0]) or 0):
            for c in last:
                mine[c] = stored.get(c)
    mx = rules.get("max", ())
    if mx and (stored.get(mx[0]) or 0) > (mine.get(mx[0]) or 0):
        for c in mx:
            mine[c] = stored.get(c)
    for c in rules.get("fill", ()):
        if mine.get(c) in (None, "") and stored.get(c) not in (None, ""):
            mine[c] = stored[c]
    for c, v in rules.get("prefer", ()):
        if stored.get(c) == v:
            mine[c] = v


def _identity(mine: dict, stored: dict, base: dict | None) -> None:
    """One identity attribute (``identity`` row) seen by two writers."""
    if mine.get("value") != stored.get("value"):
        if base is None:
            mine["changes"] = (mine.get("changes") or 0) + 1   # two first values: one change, as in sequence
        if (stored.get("last_seen") or 0) > (mine.get("last_seen") or 0):   # the value seen last wins
            for c in ("value", "source", "ip", "first_seen", "frame", "capture"):
                mine[c] = stored.get(c)
    elif _earlier(stored.get("first_seen"), mine.get("first_seen")):
        for c in ("first_seen", "frame", "capture"):
            mine[c] = stored.get(c)
    if (stored.get("last_seen") or 0) > (mine.get("last_seen") or 0):
        for c in ("last_seen", "last_frame", "last_capture"):
            mine[c] = stored.get(c)
