"""The baseline as ``sensor.policy.observed.SeenPair`` records, for ``suggest_policy``.

Contract: ``seen_pairs(baseline) -> list[SeenPair]``, one per learned pair, with
what the client did there in the policy's vocabulary (docs/rules.md, "Drafting a
policy"): Modbus operation classes (user-defined and unknown codes are
``other``), function codes, units, register spans per table (reads and writes
of every unit together: the policy language restricts ranges per table),
MQTT topics published and filters subscribed, OPC UA services and the security
modes of learned sessions.  ``otwatch baseline suggest-policy`` hands them to
``suggest_policy``, whose draft raises no violation on the traffic learned
(tests/sensor/baseline/test_policy_draft.py).
"""
from __future__ import annotations

from .model import Baseline

_OPS = {"read", "write", "diagnostic", "program"}
_TRANSPORTS = {"ip/1": "icmp", "ip/58": "icmp"}
_KNOWN = {"modbus", "mqtt", "opcua", "tcp", "udp"}


def _protocol(p: str) -> str:
    """The policy's protocol name: OT protocols and transports as they are; TLS on an OT port
    (FlowStart names it ``tls``) is TCP to a policy."""
    if p in _KNOWN or (p.startswith("ip/") and p not in _TRANSPORTS):
        return p
    return _TRANSPORTS.get(p, "tcp")


def seen_pairs(b: Baseline) -> list:
    from otwatch.sensor.policy.observed import SeenPair

    out = []
    for pk in sorted(b.pairs):
        p = b.pairs[pk]
        sp = SeenPair(pk.client, pk.server, _protocol(pk.protocol), pk.port,
                      count=max(p.flows, 1), first_seen=p.first_ts)
        s = p.sets
        sp.operations = {op if op in _OPS else "other" for op in s.get("op_classes", ())}
        sp.function_codes = set(s.get("function_codes", ()))
        sp.units = set(s.get("units", ()))
        for name, cov in p.coverage.items():
            table = name.split(" ", 1)[1].split("/", 1)[1]
            sp.registers.setdefault(table, set()).update(tuple(r) for r in cov)
        sp.unknown_addresses = bool(s.get("unreadable_addresses"))
        sp.publish = set(s.get("publish", ()))
        sp.subscribe = set(s.get("subscribe", ()))
        sp.services = set(s.get("services", ()))
        sp.security_modes = {v.split("/", 1)[0] for v in s.get("session_security", ())}
        out.append(sp)
    return out
