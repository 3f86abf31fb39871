"""Baselines as reviewable YAML: ``dump(baseline) -> str`` and ``load(text, name) -> Baseline``.

Contract
--------
* Deterministic: the same model gives the same bytes (mappings in a fixed
  order, sets as sorted lists, floats rounded: timestamps to the microsecond,
  rates to ``RATE_DIGITS`` significant digits), so export → import → export is
  identical (a test checks it) and two exports diff line by line.
* Safe to read on a terminal: PyYAML's ``safe_dump`` without ``allow_unicode``
  writes control and non-ASCII characters of wire strings (topics, node ids) as
  escapes; ``safe_load`` only reads plain data.
* Strict on import: an unknown key, a wrong type or an unparsable entry is a
  ``BaselineFormatError`` naming the file and the key path; every error is
  reported at once.

Layout (docs/baseline.md)::

    version: 1
    interval: 60.0                 # seconds per interval the rates were measured over
    learning: {status, started, last, intervals, quiet, curve: [...], sources: [...]}
    assets:   {IP: {first_seen, macs, certificates, identity: {name: value}}}
    pairs:
    - pair: CLIENT>SERVER PROTOCOL/PORT
      first_seen: ...
      flows: N
      <field>: [values]            # model.FIELDS
      coverage: {"read unit=1/holding_registers": "0-9,100-103"}
      timing:   {REQUEST ID: {intervals, low, high, mean, std, period}}   # per second
      rate:     {intervals, low, high, mean, std}
    pending:  {ALERT ID: ENTRY}    # what `otwatch baseline accept` learns
"""
from __future__ import annotations

import math

import yaml

from .intervals import IntervalSet
from .model import (BOOL_FIELDS, FIELDS, INT_FIELDS, AssetProfile, Baseline, Learning, PairKey, PairProfile,
                    RateStats, parse_entry)

FORMAT_VERSION = 1
RATE_DIGITS = 6
HEADER = ("# otwatch baseline (docs/baseline.md): what each pair was seen doing while learning.\n"
          "# Review or edit it, then `otwatch baseline import FILE`.\n")


class BaselineFormatError(ValueError):
    def __init__(self, name: str, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(f"{name}: {e}" for e in errors))


def _r(x: float) -> float:
    if not math.isfinite(x) or x == 0:
        return 0.0
    return float(f"{x:.{RATE_DIGITS}g}")


def _ts(x: float) -> float:
    return round(float(x), 6)


def _sorted(values) -> list:
    return sorted(values, key=lambda v: (type(v).__name__, v))


def _stats(st: RateStats, period: bool = False) -> dict:
    d = {"intervals": st.n, "low": _r(st.lo if st.n else 0.0), "high": _r(st.hi), "mean": _r(st.mean),
         "std": _r(st.std)}
    if period and st.mean > 0:
        d["period"] = _r(1.0 / _r(st.mean))   # from the mean as written, so an import gives it again
    return d


def to_data(b: Baseline) -> dict:
    L = b.learning
    assets = {}
    for ip in _sorted(b.assets):
        a = b.assets[ip]
        assets[ip] = {"first_seen": _ts(a.first_ts), "macs": _sorted(a.macs),
                      "certificates": _sorted(a.certificates), "identity": {k: a.identity[k] for k in sorted(a.identity)}}
    pairs = []
    for pk in sorted(b.pairs):
        p = b.pairs[pk]
        d = {"pair": pk.text(), "first_seen": _ts(p.first_ts), "flows": p.flows}
        for name in FIELDS:
            if p.sets.get(name):
                d[name] = _sorted(p.sets[name])
        if p.coverage:
            d["coverage"] = {k: p.coverage[k].text() for k in sorted(p.coverage)}
        if p.timing:
            d["timing"] = {k: _stats(p.timing[k], period=True) for k in sorted(p.timing)}
        if p.rate.n:
            d["rate"] = _stats(p.rate)
        pairs.append(d)
    return {
        "version": FORMAT_VERSION,
        "interval": float(b.interval),
        "learning": {"status": L.status, "started": _ts(L.started_ts), "last": _ts(L.last_ts),
                     "intervals": L.intervals, "quiet": L.quiet, "curve": list(L.curve), "sources": list(L.sources)},
        "assets": assets,
        "pairs": pairs,
        "pending": {k: b.pending[k] for k in sorted(b.pending)},
    }


class _Dumper(yaml.SafeDumper):
    pass


def _list(dumper, data):
    # short lists of scalars on one line (the curve, ports, codes); the rest in block style
    flow = all(isinstance(v, (int, float, bool)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list)


def dump(b: Baseline) -> str:
    return HEADER + yaml.dump(to_data(b), Dumper=_Dumper, sort_keys=False, allow_unicode=False, width=120,
                              default_flow_style=False)


# -- import --------------------------------------------------------------------------
class _Reader:
    def __init__(self):
        self.errors: list[str] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(self, v, path, allowed, required=()) -> dict:
        if not isinstance(v, dict):
            self.err(path, f"expected a mapping, got {type(v).__name__}")
            return {}
        for k in v:
            if k not in allowed:
                self.err(f"{path}.{k}", f"unknown key (known: {', '.join(allowed)})")
        for k in required:
            if k not in v:
                self.err(path, f"missing key {k!r}")
        return v

    def num(self, v, path, kind=float, default=0):
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
            self.err(path, f"expected {'an integer' if kind is int else 'a number'}, got {v!r}")
            return default
        return kind(v)

    def strlist(self, v, path) -> list:
        if v is None:
            return []
        if not isinstance(v, list):
            self.err(path, f"expected a list, got {type(v).__name__}")
            return []
        return [str(x) for x in v]

    def stats(self, v, path) -> RateStats:
        m = self.mapping(v, path, ("intervals", "low", "high", "mean", "std", "period"))
        st = RateStats()
        st.n = self.num(m.get("intervals"), path + ".intervals", int)
        st.lo = self.num(m.get("low"), path + ".low") if st.n else math.inf
        st.hi = self.num(m.get("high"), path + ".high")
        st.mean = self.num(m.get("mean"), path + ".mean")
        std = self.num(m.get("std"), path + ".std")
        st.m2 = std * std * st.n
        return st


_PAIR_KEYS = ("pair", "first_seen", "flows", *FIELDS, "coverage", "timing", "rate")


def load(text: str, name: str = "<baseline>") -> Baseline:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BaselineFormatError(name, [f"not YAML: {e}"]) from None
    R = _Reader()
    top = R.mapping(data, "(top)", ("version", "interval", "learning", "assets", "pairs", "pending"),
                    required=("version",))
    if top.get("version") not in (None, FORMAT_VERSION) and "version" in top:
        R.err("version", f"unsupported version {top.get('version')!r} (this otwatch reads {FORMAT_VERSION})")
    b = Baseline()
    b.interval = R.num(top.get("interval", 60.0), "interval") or 60.0
    lm = R.mapping(top.get("learning") or {}, "learning",
                   ("status", "started", "last", "intervals", "quiet", "curve", "sources"))
    L = Learning()
    L.status = str(lm.get("status", "ready"))
    if L.status not in ("learning", "ready"):
        R.err("learning.status", f"expected learning or ready, got {L.status!r}")
    L.started_ts = R.num(lm.get("started"), "learning.started")
    L.last_ts = R.num(lm.get("last"), "learning.last")
    L.intervals = R.num(lm.get("intervals"), "learning.intervals", int)
    L.quiet = R.num(lm.get("quiet"), "learning.quiet", int)
    curve = lm.get("curve") or []
    if not isinstance(curve, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in curve):
        R.err("learning.curve", "expected a list of integers")
        curve = []
    L.curve = list(curve)
    L.sources = R.strlist(lm.get("sources"), "learning.sources")
    b.learning = L
    for ip, a in (R.mapping(top.get("assets") or {}, "assets", tuple(top.get("assets") or {}))).items():
        path = f"assets.{ip}"
        am = R.mapping(a or {}, path, ("first_seen", "macs", "certificates", "identity"))
        prof = AssetProfile(first_ts=R.num(am.get("first_seen"), path + ".first_seen"))
        prof.macs = set(R.strlist(am.get("macs"), path + ".macs"))
        prof.certificates = set(R.strlist(am.get("certificates"), path + ".certificates"))
        ident = am.get("identity") or {}
        if not isinstance(ident, dict):
            R.err(path + ".identity", "expected a mapping")
            ident = {}
        prof.identity = {str(k): str(v) for k, v in ident.items()}
        b.assets[str(ip)] = prof
    pairs = top.get("pairs") or []
    if not isinstance(pairs, list):
        R.err("pairs", "expected a list")
        pairs = []
    for i, pd in enumerate(pairs):
        path = f"pairs[{i}]"
        pm = R.mapping(pd, path, _PAIR_KEYS, required=("pair",))
        if "pair" not in pm:
            continue
        try:
            pk = PairKey.parse(str(pm["pair"]))
        except ValueError as e:
            R.err(path + ".pair", str(e))
            continue
        if pk in b.pairs:
            R.err(path + ".pair", f"{pk.text()} listed twice")
            continue
        p = PairProfile(first_ts=R.num(pm.get("first_seen"), path + ".first_seen"),
                        flows=R.num(pm.get("flows"), path + ".flows", int))
        for fname in FIELDS:
            if fname not in pm:
                continue
            vals = pm[fname]
            if not isinstance(vals, list):
                R.err(f"{path}.{fname}", "expected a list")
                continue
            out = set()
            for v in vals:
                try:
                    if fname in INT_FIELDS and (isinstance(v, bool) or not isinstance(v, int)):
                        raise ValueError(f"expected an integer, got {v!r}")
                    if fname in BOOL_FIELDS and not isinstance(v, bool):
                        raise ValueError(f"expected true or false, got {v!r}")
                    out.add(v if fname in INT_FIELDS or fname in BOOL_FIELDS else str(v))
                except ValueError as e:
                    R.err(f"{path}.{fname}", str(e))
            p.sets[fname] = out
        cov = pm.get("coverage") or {}
        if not isinstance(cov, dict):
            R.err(path + ".coverage", "expected a mapping")
            cov = {}
        for table, text in cov.items():
            try:
                if str(table).split(" ", 1)[0] not in ("read", "write"):
                    raise ValueError("expected 'read unit=N/TABLE' or 'write unit=N/TABLE'")
                p.coverage[str(table)] = IntervalSet.parse(str(text))
            except ValueError as e:
                R.err(f"{path}.coverage.{table}", str(e))
        tim = pm.get("timing") or {}
        if not isinstance(tim, dict):
            R.err(path + ".timing", "expected a mapping")
            tim = {}
        for rid, st in tim.items():
            p.timing[str(rid)] = R.stats(st, f"{path}.timing.{rid}")
        if "rate" in pm:
            p.rate = R.stats(pm["rate"], path + ".rate")
        b.pairs[pk] = p
    pend = top.get("pending") or {}
    if not isinstance(pend, dict):
        R.err("pending", "expected a mapping")
        pend = {}
    for aid, entry in pend.items():
        try:
            parse_entry(str(entry))
            b.pending[str(aid)] = str(entry)
        except ValueError as e:
            R.err(f"pending.{aid}", str(e))
    if R.errors:
        raise BaselineFormatError(name, R.errors)
    return b
