"""What was seen, per communicating pair: the input of ``suggest.suggest_policy``.

``SeenPair`` is the documented, simple input (docs/rules.md "Drafting a policy"):
one per (client, server, protocol, port), with what the client did there.  The
baseline builds them from what it learned; ``PairCollector`` builds them from
an observation stream (a pipeline consumer) and is the reference for how each
field is filled:

* ``protocol``: ``modbus``/``mqtt``/``opcua`` for a flow whose protocol is known,
  else the transport: ``tcp``, ``udp``, ``icmp``, or ``ip/<n>`` (other IP protocols);
* ``count``: flows plus client requests seen; ``first_seen``: packet time (epoch s);
* Modbus: ``operations`` (read/write/diagnostic/program/other), ``function_codes``,
  ``units``, ``registers`` {table: [(first, last), ...]} and ``unknown_addresses``
  (a request whose address could not be read: registers cannot be restricted);
* MQTT: ``publish`` (topic names), ``subscribe`` (topic filters);
* OPC UA: ``services`` (Part 4 names), ``security_modes`` (None/Sign/SignAndEncrypt seen).

All collections are bounded (``MAX_ITEMS`` per field; beyond it the field is
marked ``truncated`` and suggest leaves that constraint out, so the draft still
allows what was seen).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from otwatch.sensor import observations as O

from .model import MODBUS_OPERATIONS, OT_PROTOCOLS
from .operations import op_key

MAX_ITEMS = 4096
"""Distinct values kept per field of a pair (topics, register spans ...): a historian
reading thousands of tags stays bounded; the draft then stops restricting that field."""
MAX_PAIRS = 65536
"""Pairs collected; later new pairs are counted in ``PairCollector.dropped``."""


@dataclass
class SeenPair:
    client: str
    server: str
    protocol: str
    port: int = 0
    count: int = 0
    first_seen: float = 0.0
    operations: set = field(default_factory=set)
    function_codes: set = field(default_factory=set)
    units: set = field(default_factory=set)
    registers: dict = field(default_factory=dict)       # table -> set of (first, last)
    unknown_addresses: bool = False
    publish: set = field(default_factory=set)
    subscribe: set = field(default_factory=set)
    services: set = field(default_factory=set)
    security_modes: set = field(default_factory=set)
    truncated: set = field(default_factory=set)          # names of fields that hit MAX_ITEMS

    @classmethod
    def from_mapping(cls, d) -> "SeenPair":
        """From a dict with the same keys (lists are fine where sets are expected)."""
        kw = dict(d)
        for k in ("operations", "function_codes", "units", "publish", "subscribe", "services", "security_modes",
                  "truncated"):
            if k in kw:
                kw[k] = set(kw[k])
        if "registers" in kw:
            kw["registers"] = {t: {tuple(s) for s in spans} for t, spans in kw["registers"].items()}
        return cls(**kw)

    def add(self, name: str, value) -> None:
        s = getattr(self, name)
        if value in s:
            return
        if len(s) >= MAX_ITEMS:
            self.truncated.add(name)
            return
        s.add(value)


_TRANSPORT_NAMES = {"ip/1": "icmp", "ip/58": "icmp"}


class PairCollector:
    """Pipeline consumer: observations → ``SeenPair`` per (client, server, protocol, port)."""

    def __init__(self):
        self.pairs: dict[tuple, SeenPair] = {}
        self.dropped = 0

    def observe(self, obs) -> None:
        t = type(obs)
        if t is O.FlowStart:
            proto = obs.protocol if obs.protocol in OT_PROTOCOLS else _TRANSPORT_NAMES.get(obs.transport, obs.transport)
            port = 0 if proto == "icmp" or proto.startswith("ip/") else obs.server_port
            p = self._pair(obs.client, obs.server, proto, port, obs.ts)
            if p is not None:
                p.count += 1
        elif t is O.Message or t is O.Aggregate:
            if obs.direction != "request" or obs.protocol not in OT_PROTOCOLS:
                return
            p = self._pair(obs.client, obs.server, obs.protocol, obs.server_port,
                           obs.ts if t is O.Message else obs.first_ts)
            if p is None:
                return
            p.count += 1 if t is O.Message else 0
            self._op(p, obs, t is O.Message)

    def _pair(self, client, server, proto, port, ts) -> SeenPair | None:
        k = (client, server, proto, port)
        p = self.pairs.get(k)
        if p is None:
            if len(self.pairs) >= MAX_PAIRS:
                self.dropped += 1
                return None
            p = self.pairs[k] = SeenPair(client, server, proto, port, 0, ts)
        elif ts and (not p.first_seen or ts < p.first_seen):
            p.first_seen = ts
        return p

    def _op(self, p: SeenPair, m, is_message: bool) -> None:
        event = m.event if is_message else None
        k = op_key(m.protocol, m.kind, m.op, m.key, event)
        if k is None:
            return
        if k[0] == "modbus":
            _, op, unit, fc, accesses = k
            p.add("operations", op)
            p.add("function_codes", fc)
            p.add("units", unit)
            for table, a, b in accesses:
                if a < 0:
                    p.unknown_addresses = True
                    continue
                spans = p.registers.setdefault(table, set())
                if (a, b) not in spans:
                    if len(spans) >= MAX_ITEMS:
                        p.truncated.add("registers")
                    else:
                        spans.add((a, b))
        elif k[0] == "publish":
            p.add("publish", k[1])
        elif k[0] == "subscribe":
            for f in k[1]:
                p.add("subscribe", f)
        elif k[0] == "service":
            p.add("services", k[1])
        if m.protocol == "opcua" and is_message and m.kind == "opcua.open_secure_channel":
            mode = getattr(event, "security_mode", None)
            name = {1: "None", 2: "Sign", 3: "SignAndEncrypt"}.get(mode) if mode else None
            if name is None:   # body encrypted: a policy other than None, so at least Sign
                name = "None" if getattr(event, "security_policy", "") == "None" else "Sign"
            p.add("security_modes", name)

    def seen(self) -> list[SeenPair]:
        return list(self.pairs.values())


_ICMP = {"ip/1", "ip/58", "icmp"}


def from_baseline(b) -> list[SeenPair]:
    """SeenPairs from a learned baseline (sensor/baseline/model.py ``Baseline``), one per learned pair in
    pair order: the one adapter from what the baseline learned to the policy's vocabulary
    (``otwatch baseline suggest-policy``; tests/sensor/baseline/test_policy_draft.py checks that the
    draft raises no violation on the traffic learned).  Read by attribute:

    ``b.pairs`` maps ``PairKey(client, server, protocol, port)`` to a profile with
    ``first_ts``, ``flows``, ``sets`` (units, function_codes, op_classes,
    unreadable_addresses, publish, subscribe, services, session_security as
    ``"<mode>/<policy>"``) and ``coverage`` (``"read unit=1/holding_registers"`` -> ranges of (lo, hi)).
    Operation classes the policy language does not name (user-defined, unknown codes) are ``other``;
    a learned request whose addresses could not be read sets ``unknown_addresses`` (registers are then
    not restricted); transports and labels such as ``tls`` are mapped by ``suggest``.
    """
    out = []
    for key in sorted(b.pairs):
        prof = b.pairs[key]
        client, server, protocol, port = key[0], key[1], key[2], key[3]
        if protocol in _ICMP:
            protocol, port = "icmp", 0
        p = SeenPair(client, server, protocol, int(port or 0), max(int(getattr(prof, "flows", 0) or 0), 1),
                     float(getattr(prof, "first_ts", 0.0) or 0.0))
        sets = getattr(prof, "sets", {}) or {}
        p.units = {int(u) for u in sets.get("units", ())}
        p.function_codes = {int(f) & 0x7F for f in sets.get("function_codes", ())}
        p.operations = {o if o in MODBUS_OPERATIONS else "other" for o in sets.get("op_classes", ())}
        p.unknown_addresses = bool(sets.get("unreadable_addresses"))
        p.publish = set(sets.get("publish", ()))
        p.subscribe = set(sets.get("subscribe", ()))
        p.services = set(sets.get("services", ()))
        p.security_modes = {str(v).split("/", 1)[0] for v in sets.get("session_security", ())}
        for name, ranges in (getattr(prof, "coverage", {}) or {}).items():
            table = str(name).rsplit("/", 1)[-1]
            p.registers.setdefault(table, set()).update((int(lo), int(hi)) for lo, hi in ranges)
        out.append(p)
    return out


__all__ = ["SeenPair", "PairCollector", "from_baseline", "MAX_ITEMS", "MAX_PAIRS"]
