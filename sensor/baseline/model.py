"""What a baseline holds: assets, pairs, and per pair what was seen and how often.

Contract
--------
* An **asset** is an IP address (text) as the engine reports it, with the MACs,
  OPC UA certificates (SHA-1 thumbprints) and device-identity facts (Modbus
  device identification objects, FC 17 server id) seen for it.  The inventory
  merges addresses into devices; the baseline stays at the address, which is
  what a flow carries.
* A **pair** is ``PairKey(client, server, protocol, port)``: ``protocol`` is the
  OT protocol (modbus, mqtt, opcua) when one was decoded, else the transport
  (tcp, udp, ip/N).  Per pair a ``PairProfile`` keeps:

  - ``sets[field]``: values seen, by field (``FIELDS`` names them all: Modbus unit
    ids, function codes, operation classes; MQTT topics published, filters
    subscribed with wildcards kept, QoS, retain, protocol levels, credential use,
    user names; OPC UA services, nodes written, methods called, session
    security, user token types);
  - ``coverage["read unit=1/holding_registers"]``: the addresses read / written,
    per unit and table, as an ``IntervalSet``;
  - ``timing[request id]``: messages per second per interval for each request
    (``"request modbus.read_coils unit=1/coils/0+16"``): its band, mean and
    spread; a request present in every learned interval is a poll, whose period
    is ``1 / mean``;
  - ``rate``: the pair's messages per second per interval, as a band.
* An **entry** is one learnable fact, written as text for ``accept`` and
  ``unlearn``: ``asset 10.10.0.66``, ``pair 10.10.0.21>10.10.0.11 modbus/502``,
  ``pair 10.10.0.21>10.10.0.11 modbus/502 function_codes 6``, ``pair ... coverage
  read unit=1/holding_registers 0-9``, ``pair ... timing`` (all timing of a pair).
  ``Baseline.add_entry`` / ``remove_entry`` apply them.

Nothing here reads observations; ``learn.py`` fills a model, ``detect.py``
compares with one, ``yamlio.py`` writes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from .intervals import IntervalSet

FIELDS: dict[str, str] = {
    "units": "Modbus unit ids addressed",
    "function_codes": "Modbus function codes sent by the client",
    "op_classes": "Modbus operation classes (read, write, diagnostic, program, ...)",
    "unreadable_addresses": "Modbus tables of malformed requests whose addresses could not be read",
    "umas_functions": "Schneider UMAS functions inside FC 90 (init_comm, read_id, stop_plc, ...)",
    "publish": "MQTT topics published by the client",
    "subscribe": "MQTT topic filters subscribed (wildcards kept)",
    "qos": "MQTT QoS levels used (publish and subscribe)",
    "retain": "MQTT retain flag values used when publishing",
    "protocol_levels": "MQTT protocol levels of CONNECT (3 = 3.1, 4 = 3.1.1, 5 = 5.0)",
    "credentials": "MQTT CONNECT credential use: anonymous, username, username+password",
    "usernames": "MQTT user names (never passwords)",
    "services": "OPC UA services requested",
    "nodes_written": "OPC UA node ids written",
    "methods_called": "OPC UA method ids called",
    "session_security": "OPC UA security mode/policy of channels that carried a session",
    "user_tokens": "OPC UA user identity token types",
}
INT_FIELDS = frozenset({"units", "function_codes", "qos", "protocol_levels"})
BOOL_FIELDS = frozenset({"retain"})


class PairKey(NamedTuple):
    client: str
    server: str
    protocol: str
    port: int

    def text(self) -> str:
        return f"{self.client}>{self.server} {self.protocol}/{self.port}"

    @classmethod
    def parse(cls, text: str) -> "PairKey":
        try:
            ends, proto = text.strip().split(" ", 1)
            client, server = ends.split(">", 1)
            protocol, port = proto.strip().rsplit("/", 1)
            return cls(client, server, protocol, int(port))
        except ValueError:
            raise ValueError(f"not a pair: {text!r} (expected CLIENT>SERVER PROTOCOL/PORT)") from None


@dataclass
class RateStats:
    """Messages per second over learned intervals: count, band, mean and spread (Welford)."""

    n: int = 0
    lo: float = math.inf
    hi: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, rate: float) -> None:
        self.n += 1
        if rate < self.lo:
            self.lo = rate
        if rate > self.hi:
            self.hi = rate
        d = rate - self.mean
        self.mean += d / self.n
        self.m2 += d * (rate - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else 0.0


@dataclass
class AssetProfile:
    first_ts: float = 0.0
    macs: set = field(default_factory=set)
    certificates: set = field(default_factory=set)
    identity: dict = field(default_factory=dict)


@dataclass
class PairProfile:
    first_ts: float = 0.0
    flows: int = 0
    sets: dict = field(default_factory=dict)       # field -> set of values
    coverage: dict = field(default_factory=dict)   # "read unit=1/holding_registers" -> IntervalSet
    timing: dict = field(default_factory=dict)     # request id -> RateStats
    rate: RateStats = field(default_factory=RateStats)

    def values(self, name: str) -> set:
        s = self.sets.get(name)
        if s is None:
            s = self.sets[name] = set()
        return s

    def has(self, name: str, value) -> bool:
        s = self.sets.get(name)
        return s is not None and value in s


@dataclass
class Learning:
    """Learning progress: the curve (new entries per interval) and when it ended."""

    status: str = "learning"          # learning | ready
    started_ts: float = 0.0
    last_ts: float = 0.0
    intervals: int = 0
    quiet: int = 0                    # consecutive intervals without a new entry
    curve: list = field(default_factory=list)   # new entries per interval (the last CURVE_KEEP)
    sources: list = field(default_factory=list)  # what it was learned from (file names, "iface:eth1")


CURVE_KEEP = 10_000
"""Intervals of learning curve kept (a week of one-minute intervals)."""
MAX_PENDING = 10_000
"""Findings remembered for ``accept`` (alert id -> entry); oldest dropped first."""


@dataclass
class Baseline:
    interval: float = 60.0
    assets: dict = field(default_factory=dict)   # ip -> AssetProfile
    pairs: dict = field(default_factory=dict)    # PairKey -> PairProfile
    learning: Learning = field(default_factory=Learning)
    pending: dict = field(default_factory=dict)  # alert id -> entry text (what `accept` learns)

    # -- entries -----------------------------------------------------------
    def add_entry(self, entry: str, ts: float = 0.0) -> bool:
        """Learn one entry (see module docstring); True if the model changed."""
        kind, pair, name, value = parse_entry(entry)
        if kind == "asset":
            if pair in self.assets:
                return False
            self.assets[pair] = AssetProfile(first_ts=ts)
            return True
        prof = self.pairs.get(pair)
        changed = False
        if prof is None:
            prof = self.pairs[pair] = PairProfile(first_ts=ts)
            changed = True
            for ip in (pair.client, pair.server):
                if ip not in self.assets:
                    self.assets[ip] = AssetProfile(first_ts=ts)
        if name is None:
            return changed
        if name == "coverage":
            table, rng = value
            cov = prof.coverage.setdefault(table, IntervalSet())
            for lo, hi in rng:
                changed |= cov.add(lo, hi)
            return changed
        if name == "timing":
            return changed
        vals = prof.values(name)
        if value in vals:
            return changed
        vals.add(value)
        return True

    def remove_entry(self, entry: str) -> bool:
        """Unlearn one entry; True if it was there.  Removing a pair removes all it holds;
        removing an asset removes it and every pair it is part of."""
        kind, pair, name, value = parse_entry(entry)
        if kind == "asset":
            if pair not in self.assets:
                return False
            del self.assets[pair]
            for k in [k for k in self.pairs if pair in (k.client, k.server)]:
                del self.pairs[k]
            return True
        prof = self.pairs.get(pair)
        if prof is None:
            return False
        if name is None:
            del self.pairs[pair]
            return True
        if name == "coverage":
            table, rng = value
            cov = prof.coverage.get(table)
            if cov is None:
                return False
            for lo, hi in rng:
                cov.remove(lo, hi)
            if not len(cov):
                del prof.coverage[table]
            return True
        if name == "timing":
            had = bool(prof.timing) or prof.rate.n > 0
            prof.timing.clear()
            prof.rate = RateStats()
            return had
        vals = prof.sets.get(name)
        if not vals or value not in vals:
            return False
        vals.discard(value)
        return True

    def entry_count(self) -> int:
        n = len(self.assets) + len(self.pairs)
        for p in self.pairs.values():
            n += sum(len(v) for v in p.sets.values()) + sum(len(c) for c in p.coverage.values())
        return n


def entry_text(kind: str, key, name: str | None = None, value=None) -> str:
    """The text form of an entry (``parse_entry`` reads it back)."""
    if kind == "asset":
        return f"asset {key}"
    out = f"pair {key.text()}"
    if name is None:
        return out
    if name == "coverage":
        table, rng = value
        return f"{out} coverage {table} {IntervalSet(rng).text()}"
    if name == "timing":
        return f"{out} timing"
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"{out} {name} {value}"


def parse_entry(text: str):
    """(kind, key, field, value) of an entry text; ValueError with what is wrong."""
    text = str(text).strip()
    if text.startswith("asset "):
        ip = text[6:].strip()
        if not ip or " " in ip:
            raise ValueError(f"not an asset entry: {text!r} (expected 'asset IP')")
        return "asset", ip, None, None
    if not text.startswith("pair "):
        raise ValueError(f"not an entry: {text!r} (expected 'asset IP' or 'pair CLIENT>SERVER PROTOCOL/PORT ...')")
    parts = text[5:].split(" ", 3)
    if len(parts) < 2:
        raise ValueError(f"not a pair entry: {text!r}")
    key = PairKey.parse(parts[0] + " " + parts[1])
    if len(parts) == 2:
        return "pair", key, None, None
    name = parts[2]
    rest = parts[3] if len(parts) > 3 else ""
    if name == "timing":
        return "pair", key, "timing", None
    if name == "coverage":
        try:
            table, ranges = rest.rsplit(" ", 1)
            # "read unit=1/holding_registers 0-9": table is "read unit=1/holding_registers"
            return "pair", key, "coverage", (table, tuple(IntervalSet.parse(ranges)))
        except ValueError:
            raise ValueError(f"bad coverage entry: {text!r} (expected '... coverage read|write "
                             "unit=N/TABLE RANGES')") from None
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r} in {text!r}; known: {', '.join(sorted(FIELDS))}, coverage, timing")
    if rest == "":
        raise ValueError(f"missing value in {text!r}")
    return "pair", key, name, typed_value(name, rest)


def typed_value(name: str, raw):
    """A field's value from its YAML/text form (ints for INT_FIELDS, bools for BOOL_FIELDS)."""
    if name in INT_FIELDS:
        return int(raw)
    if name in BOOL_FIELDS:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "false"):
            return str(raw).lower() == "true"
        raise ValueError(f"{name}: expected true or false, got {raw!r}")
    return str(raw)
