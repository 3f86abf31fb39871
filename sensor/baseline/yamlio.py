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
* Strict on import: YAML syntax, a duplicate key (YAML would keep the last one
  without a word), an anchor or alias, an unknown key, a wrong type or an
  unparsable entry is a ``BaselineFormatError`` whose lines read
  ``file:line:column: key path: what is wrong`` (``policy.errors.Problem``);
  every error is reported at once.  Parsed by libyaml (``policy.yamlsrc.compose``,
  which keeps positions), bounded by ``MAX_BYTES`` and ``MAX_NODES``; nothing but
  a ``BaselineFormatError`` comes out of ``load`` (a fuzz test checks it).

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


MAX_BYTES = 256 * 1024 * 1024
"""A baseline of a large site is megabytes (114 kB for bench/'s 214 pairs); past this it is not one."""
MAX_NODES = 20_000_000
"""YAML nodes in a baseline file (each learned value is one): a bound, far above any plant's."""


class BaselineFormatError(ValueError):
    """A baseline file that cannot be used: ``problems`` (``policy.errors.Problem``, sorted by position),
    ``errors`` the same as text lines ``file:line:column: key path: what is wrong``."""

    def __init__(self, name: str, problems: list):
        self.problems = sorted(problems, key=lambda p: (p.line, p.column, p.message))
        self.errors = [str(p) for p in self.problems]
        super().__init__("\n".join(self.errors) or f"{name}: not a baseline")


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
def _short(v, limit: int = 80) -> str:
    """A value for a message: repr, cut (the file may hold anything; messages stay one short line)."""
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "…"


class _Reader:
    """Checks the plain data, collecting errors by key path; ``problems`` puts each at its position."""

    def __init__(self):
        self.errors: list[tuple[str, str]] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append((path, msg))

    def problems(self, root, name: str) -> list:
        from otwatch.sensor.policy.errors import Problem
        from otwatch.sensor.policy.yamlsrc import position

        out = []
        for path, msg in self.errors:
            line, col = position(_locate(root, path))
            out.append(Problem(line, col, f"{path}: {msg}", name, "baseline"))
        return out

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
            self.err(path, f"expected {'an integer' if kind is int else 'a number'}, got {_short(v)}")
            return default
        try:
            return kind(v)
        except OverflowError:
            self.err(path, f"number out of range: {_short(v)}")
            return default

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


def _locate(root, path: str):
    """The node a key path of ``_Reader`` names (``pairs[3].coverage.read unit=1/coils``), or the
    closest one above it: a key that ends the path is its key node (where an editor should point).
    Keys may contain dots (addresses), so at each mapping the longest key that fits is taken."""
    rest = path[5:] if path.startswith("(top)") else path
    rest = rest.lstrip(".")
    node = root
    while rest:
        if rest.startswith("["):
            j = rest.find("]")
            idx = rest[1:j]
            if j < 0 or not idx.isdigit() or not isinstance(node, yaml.SequenceNode) or int(idx) >= len(node.value):
                break
            node, rest = node.value[int(idx)], rest[j + 1:].lstrip(".")
            continue
        if not isinstance(node, yaml.MappingNode):
            break
        best = None
        for k, v in node.value:
            kv = getattr(k, "value", None)
            if isinstance(kv, str) and (rest == kv or rest.startswith(kv + ".") or rest.startswith(kv + "[")):
                if best is None or len(kv) > len(best[0].value):
                    best = (k, v)
        if best is None:
            break
        rest = rest[len(best[0].value):]
        if not rest:
            return best[0]
        node, rest = best[1], rest.lstrip(".")
    return node


def _alias(root):
    """The first node reached twice (an alias), or None.  Exports never use anchors; refusing them keeps
    the walk over the data linear (an alias bomb is a few lines)."""
    seen, stack = set(), [root]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            return n
        seen.add(id(n))
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.append(k)
                stack.append(v)
        elif isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
    return None


def _parse(text: str, name: str):
    """(root node, plain data) of a baseline file, or BaselineFormatError."""
    from otwatch.sensor.policy.errors import Problem
    from otwatch.sensor.policy.yamlsrc import compose, position

    root, problems = compose(text, name, MAX_BYTES, MAX_NODES, "empty file: not a baseline (no `version: 1`)")
    if root is not None and not problems:
        dup = _alias(root)
        if dup is not None:
            line, col = position(dup)
            problems.append(Problem(line, col, "anchors and aliases are not used in a baseline (write values out)",
                                    name, "alias"))
    if problems or root is None:
        raise BaselineFormatError(name, problems)
    try:
        return root, yaml.constructor.SafeConstructor().construct_document(root)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise BaselineFormatError(name, [Problem(line, col, f"YAML: {what}", name, "yaml")]) from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as e:
        raise BaselineFormatError(name, [Problem(1, 1, f"YAML: {e}", name, "yaml")]) from None


def load(text: str, name: str = "<baseline>") -> Baseline:
    root, data = _parse(text, name)
    R = _Reader()
    try:
        b = _build(data, R)
    except RecursionError:
        R.err("(top)", "nested too deeply")
    if R.errors:
        raise BaselineFormatError(name, R.problems(root, name))
    return b


def _build(data, R: "_Reader") -> Baseline:
    top = R.mapping(data, "(top)", ("version", "interval", "learning", "assets", "pairs", "pending"),
                    required=("version",))
    if top.get("version") not in (None, FORMAT_VERSION) and "version" in top:
        R.err("version", f"unsupported version {_short(top.get('version'))} (this otwatch reads {FORMAT_VERSION})")
    b = Baseline()
    b.interval = R.num(top.get("interval", 60.0), "interval") or 60.0
    if not (0 < b.interval < math.inf):
        R.err("interval", f"expected a positive number of seconds, got {_short(b.interval)}")
        b.interval = 60.0
    lm = R.mapping(top.get("learning") or {}, "learning",
                   ("status", "started", "last", "intervals", "quiet", "curve", "sources"))
    L = Learning()
    L.status = str(lm.get("status", "ready"))
    if L.status not in ("learning", "ready"):
        R.err("learning.status", f"expected learning or ready, got {_short(L.status)}")
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
    assets = top.get("assets") or {}
    for ip, a in (R.mapping(assets, "assets", tuple(assets) if isinstance(assets, dict) else ())).items():
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
                        raise ValueError(f"expected an integer, got {_short(v)}")
                    if fname in BOOL_FIELDS and not isinstance(v, bool):
                        raise ValueError(f"expected true or false, got {_short(v)}")
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
    return b
