"""Verdicts: is this flow / this operation allowed between these zones?

``Verdicts(policy)`` answers three questions, each from a bounded cache keyed
by exactly what the answer depends on, so the same (zone pair, protocol,
port, operation, target) is decided once, however often it is seen:

* ``flow(src_zone, dst_zone, transport, port)``: may a client in one zone open
  this flow to a server in the other?  (FlowStart)
* ``operation(src_zone, dst_zone, protocol, port, op_key)``: may it do this?
  (Message and Aggregate requests; ``op_key`` from ``operations.op_key``)
* ``min_security_mode(src_zone, dst_zone, port)``: the weakest OPC UA security
  mode a conduit that allows this OPC UA accepts (1 = None: no minimum).

A ``Verdict`` names the conduit that allowed or broke it (or ``default`` for
default deny, or ``zone <name>`` for traffic inside a zone) and says why in one
line.  Rules of a conduit are alternatives: an operation is allowed when any
rule allows it whole; the reason given for a denial is the first rule's.

The cache is invisible: a verdict is a pure function of its key (tested by
running a capture with the cache on and off).  It holds ``CACHE_MAX`` entries
and starts over when full.
"""
from __future__ import annotations

from typing import NamedTuple

from . import topics
from .model import MODBUS_OPERATIONS, MODBUS_TABLES, OPCUA_SESSION_SERVICES, UNZONED, Policy, Rule

CACHE_MAX = 65536
"""Verdicts remembered.  A plant has tens of zone pairs and hundreds of distinct
operations; a register sweep makes thousands, which is still far below this."""

TRANSPORTS = {"modbus": ("tcp",), "mqtt": ("tcp",), "opcua": ("tcp",), "tcp": ("tcp",), "udp": ("udp",),
              "icmp": ("ip/1", "ip/58")}
"""FlowStart.transport values a rule protocol matches (ICMP is IP protocol 1, ICMPv6 58)."""


class Verdict(NamedTuple):
    allowed: bool
    rule: str          # conduit name, "default" (default deny) or "zone <name>" (intra-zone)
    reason: str        # one line for people
    code: str          # machine-readable: intra_zone, conduit, no_conduit, not_in_conduit, protocol,
                       # operation, function_code, unit, register, topic, service


class Verdicts:
    def __init__(self, policy: Policy, cache_max: int = CACHE_MAX):
        self.policy = policy
        self.cache_max = cache_max
        self.pairs: dict[tuple[str, str], list] = {}
        for c in policy.conduits:
            for s in c.sources:
                for t in c.targets:
                    self.pairs.setdefault((s, t), []).append(c)
        self.intra = {z.name: z.intra_zone == "allow" for z in policy.zones.values()}
        self._cache: dict = {}
        self.hits = 0
        self.misses = 0

    # -- cache ------------------------------------------------------------------
    def _cached(self, key, compute):
        v = self._cache.get(key)
        if v is not None:
            self.hits += 1
            return v
        self.misses += 1
        v = compute()
        if self.cache_max:
            if len(self._cache) >= self.cache_max:
                self._cache.clear()
            self._cache[key] = v
        return v

    # -- common -------------------------------------------------------------------
    def _inside(self, sz: str, dz: str) -> Verdict | None:
        if sz == dz and self.intra.get(sz, False):
            return Verdict(True, f"zone {sz}", f"inside zone {sz} (intra_zone: allow)", "intra_zone")
        return None

    def _no_conduit(self, sz: str, dz: str) -> Verdict:
        return Verdict(False, "default", f"no conduit from zone {sz} to zone {dz} (default deny)", "no_conduit")

    @staticmethod
    def _port_ok(r: Rule, port: int) -> bool:
        return r.ports is None or r.ports.contains(port)

    # -- flows ----------------------------------------------------------------------
    def unrestricted(self, sz: str) -> bool:
        """May zone *sz* open any flow to every zone (unzoned addresses included)?  Then flows it
        opened that were not distinguished (past the engine's scan budget) need no judging."""
        return self._cached(("unrestricted", sz), lambda: all(
            (z == sz and self.intra.get(sz, False))
            or any(r.protocol == "any" for c in self.pairs.get((sz, z), ()) for r in c.rules)
            for z in (*self.policy.zones, UNZONED)))

    def flow(self, sz: str, dz: str, transport: str, port: int) -> Verdict:
        return self._cached(("flow", sz, dz, transport, port), lambda: self._flow(sz, dz, transport, port))

    def _settled(self, sz, dz) -> tuple[Verdict | None, tuple]:
        """(the verdict when no rule decides it: same zone, or no conduit; else None, and the conduits)."""
        v = self._inside(sz, dz)
        if v is not None:
            return v, ()
        conduits = self.pairs.get((sz, dz))
        if not conduits:
            return self._no_conduit(sz, dz), ()
        return None, conduits

    def _flow(self, sz, dz, transport, port) -> Verdict:
        v, conduits = self._settled(sz, dz)
        if v is not None:
            return v
        for c in conduits:
            for r in c.rules:
                if r.protocol == "any" or (transport in TRANSPORTS[r.protocol] and self._port_ok(r, port)):
                    return Verdict(True, c.name, f"conduit {c.name} rule {r.index} ({r.protocol})", "conduit")
        what = transport if transport.startswith("ip/") else f"{transport}/{port}"
        names = ", ".join(c.name for c in conduits)
        return Verdict(False, conduits[0].name, f"conduit {names} does not allow {what}", "not_in_conduit")

    # -- operations -------------------------------------------------------------------
    def operation(self, sz: str, dz: str, protocol: str, port: int, opk: tuple) -> Verdict:
        return self._cached(("op", sz, dz, protocol, port, opk), lambda: self._operation(sz, dz, protocol, port, opk))

    def _rules_for(self, sz, dz, protocol, port) -> list:
        return [(c, r) for c in self.pairs.get((sz, dz), ()) for r in c.rules
                if r.protocol == "any" or (r.protocol == protocol and self._port_ok(r, port))]

    def _operation(self, sz, dz, protocol, port, opk) -> Verdict:
        v, conduits = self._settled(sz, dz)
        if v is not None:
            return v
        cands = self._rules_for(sz, dz, protocol, port)
        if not cands:
            names = ", ".join(c.name for c in conduits)
            return Verdict(False, conduits[0].name, f"conduit {names} does not allow {protocol} on port {port}",
                           "protocol")
        if opk[0] == "covered":
            v = self._operation(sz, dz, protocol, port, ("modbus", opk[2], opk[3], opk[4], ()))
            if not v.allowed:
                return v     # denied whatever the addresses: as every range of it was
            p = _covered_problem([r for _, r in cands], opk)
            if p is None:
                return Verdict(True, v.rule, "every address was judged in a range of its own", "covered")
            if p[0] == "register":
                return self._operation(sz, dz, protocol, port, ("modbus", opk[2], opk[3], opk[4], ((opk[5], -1, -1),)))
            return Verdict(False, conduits[0].name, f"conduit {conduits[0].name}: {p[1]}", p[0])
        first = None
        for c, r in cands:
            code, why = _rule_problem(r, opk)
            if not code:
                return Verdict(True, c.name, f"conduit {c.name} rule {r.index} ({r.protocol})", "conduit")
            if first is None:
                first = Verdict(False, c.name, f"conduit {c.name} rule {r.index}: {why}", code)
        return first

    # -- OPC UA security mode ------------------------------------------------------------
    def min_security_mode(self, sz: str, dz: str, port: int) -> tuple[int, str]:
        """(weakest acceptable mode, conduit name); (1, "") when nothing requires more than None."""
        return self._cached(("mode", sz, dz, port), lambda: self._min_mode(sz, dz, port))

    def _min_mode(self, sz, dz, port) -> tuple[int, str]:
        if self._inside(sz, dz) is not None:
            return (1, "")
        best = None
        for c, r in self._rules_for(sz, dz, "opcua", port):
            m = r.opcua.min_security_mode if (r.protocol == "opcua" and r.opcua is not None) else None
            m = m or 1
            if best is None or m < best[0]:
                best = (m, c.name)
        return best or (1, "")

    def stats(self) -> dict:
        return {"policy.verdict_cache_hits": self.hits, "policy.verdict_cache_misses": self.misses,
                "policy.verdict_cache_size": len(self._cache)}


MODBUS_ALL = {"function_codes": (1, 127), "units": (0, 255)}
"""What a Modbus rule must allow to allow every operation: function codes 1-127 (the
exception bit aside; Modbus Application Protocol v1.1b3 §4.1) and unit ids 0-255."""
REGISTERS_ALL = (0, 65535)
"""Every address of a table (16-bit addresses, §4.4)."""


def _overflow_problem(r: Rule, k: tuple) -> tuple[str, str]:
    """Operations past the key cap (``("overflow", protocol, what)``): their unit, function code,
    registers or topic are unknown, so only a rule that allows every such operation allows them."""
    why = "operations past the link's key cap are not distinguished"
    protocol, what = k[1], k[2]
    if protocol == "modbus":
        m = r.modbus
        if m is None:
            return "", ""
        if m.operations is not None and not set(MODBUS_OPERATIONS) <= m.operations:
            return "key_overflow", f"{why}: some may be outside its Modbus operations " \
                                   f"({', '.join(sorted(m.operations)) or 'none'})"
        for name, (lo, hi) in MODBUS_ALL.items():
            rs = getattr(m, name)
            if rs is not None and not rs.covers(lo, hi):
                return "key_overflow", f"{why}: some may be outside its {name.replace('_', ' ')} ({rs.text()})"
        if m.registers is not None:
            for table in MODBUS_TABLES:
                rs = m.registers.get(table)
                if rs is None or not rs.covers(*REGISTERS_ALL):
                    return "key_overflow", f"{why}: some may touch {table} outside what it allows"
        return "", ""
    if protocol == "mqtt":
        q = None
        if r.mqtt is not None:
            q = r.mqtt.publish if what == "publish" else r.mqtt.subscribe
        if q is None or "#" in q:
            return "", ""
        return "key_overflow", f"{why}: some {what} topics may match none of {', '.join(q) or '(no filters)'}"
    return "", ""


def _covered_problem(rules: list, k: tuple) -> tuple[str, str] | None:
    """Modbus requests counted under a link's lump key (``("covered", "modbus", op, unit, fc,
    table)``, docs/rules.md "Ranges counted together"): every address they name was named before
    on the link, with this unit and function code, by a request that was judged on its own.  A
    range inside the union of judged ranges gets the verdict they got when the register sets of
    the rules that allow this operation, unit and function code never join into a span no single
    rule allows (their merged spans are each inside one rule's span): then a lump needs no verdict
    of its own (None).  Otherwise ("covered", why): a range may straddle two rules' registers, so
    the lump is not distinguished."""
    _, _, op, unit, fc, table = k
    spans: list = []
    sets: set = set()
    for r in rules:
        if _rule_problem(r, ("modbus", op, unit, fc, ()))[0]:
            continue                     # not allowed by this rule whatever the addresses
        m = r.modbus
        if m is None or m.registers is None:
            return None                  # this rule allows every address of it
        rs = m.registers.get(table)
        if rs is not None:
            spans.extend(rs.spans)
            sets.add(rs.spans)
    if not spans:
        return ("register", "")          # no rule allows the table: denied as each range was
    if fc == 23 and len(sets) > 1:
        # two ranges a request (read and write): each inside what one rule allows is not enough,
        # one rule must allow both
        return ("not_distinguished", f"FC 23 reads and writes {table} that several rules allow in "
                                     f"different ranges; ranges counted together may need two of them")
    spans.sort()
    merged: list = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    for lo, hi in merged:
        if not any(a <= lo and hi <= b for a, b in spans):
            return ("not_distinguished", f"{table} {lo}-{hi} is allowed only by several rules together, "
                                         f"and ranges counted together may straddle them")
    return None


def _rule_problem(r: Rule, k: tuple) -> tuple[str, str]:
    """("", "") when rule r allows operation k, else (code, why)."""
    kind = k[0]
    if kind == "overflow":
        return _overflow_problem(r, k)
    if kind == "modbus":
        m = r.modbus
        if m is None:
            return "", ""
        _, op, unit, fc, accesses = k
        if m.operations is not None and op not in m.operations:
            return "operation", f"{op} is not among its Modbus operations ({', '.join(sorted(m.operations)) or 'none'})"
        if m.function_codes is not None and not m.function_codes.contains(fc):
            return "function_code", f"function code {fc} is not among {m.function_codes.text()}"
        if m.units is not None and not m.units.contains(unit):
            return "unit", f"unit id {unit} is not among {m.units.text()}"
        if m.registers is not None:
            for table, a, b in accesses:
                allowed = m.registers.get(table)
                if allowed is None:
                    return "register", f"{table} are not allowed (only {', '.join(m.registers) or 'no tables'})"
                if a < 0:
                    return "register", f"{table} address unknown (malformed request)"
                if not allowed.covers(a, b):
                    rng = str(a) if a == b else f"{a}-{b}"
                    return "register", f"{table} {rng} outside {allowed.text()}"
        return "", ""
    if kind == "publish":
        q = r.mqtt.publish if r.mqtt is not None else None
        if q is None or any(topics.matches(f, k[1]) for f in q):
            return "", ""
        return "topic", f"publish to {k[1]!r} matches none of {', '.join(q) or '(no publish filters)'}"
    if kind == "subscribe":
        q = r.mqtt.subscribe if r.mqtt is not None else None
        if q is None:
            return "", ""
        for f in k[1]:
            if not any(topics.covers(a, f) for a in q):
                return "topic", f"subscription {f!r} is not within {', '.join(q) or '(no subscribe filters)'}"
        return "", ""
    if kind == "service":
        s = r.opcua.services if r.opcua is not None else None
        if s is None or k[1] in OPCUA_SESSION_SERVICES or k[1] in s:
            return "", ""
        return "service", f"OPC UA service {k[1]} is not among {', '.join(sorted(s)) or '(session services only)'}"
    return "", ""   # session framing, encrypted bodies: allowed wherever the protocol is


__all__ = ["Verdict", "Verdicts", "CACHE_MAX", "TRANSPORTS", "UNZONED"]
