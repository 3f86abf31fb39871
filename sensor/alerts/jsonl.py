"""JSON lines alert sink: one ECS-like record per alert change (schema in docs/alerts.md).

Contract
--------
``JSONLAlerts(stream)`` is an ``AlertBook`` listener: at every flush it writes
one line per changed alert, the alert's state after the change (``event.count``
is the count this run has seen so far, ``otwatch.delta`` what this flush
added).  A receiver keeps the last line per ``event.id``.  ``record(alert)``
builds the dict; ``dumps(record)`` the line.

Escaping: every string is written by ``json.dumps`` with ``ensure_ascii``, so
the line is pure ASCII: quotes, backslashes, every control character (C0, DEL,
C1), U+2028/U+2029 and every other non-ASCII character become ``\\uXXXX``
escapes; a lone surrogate (which a valid UTF-8 reader would reject) is
replaced by U+FFFD first.  A line never contains a raw newline, so one record
is one line whatever the wire strings held.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import IO, Any

from . import catalogue
from .aggregate import AlertChange
from .model import Alert, severity_rank

SCHEMA_VERSION = 1
_SURROGATE = re.compile("[\ud800-\udfff]")


def iso(ts: float) -> str:
    """Packet time as RFC 3339 UTC with microseconds."""
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except (OverflowError, OSError, ValueError):
        return ""


def _clean(v: Any) -> Any:
    if isinstance(v, str):
        return _SURROGATE.sub("\ufffd", v) if _SURROGATE.search(v) else v
    if isinstance(v, dict):
        return {_clean(str(k)): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
        return None
    if v is None or isinstance(v, (bool, int, float)):
        return v
    return _clean(str(v))


def record(a: Alert, delta: int | None = None, observer: str = "") -> dict:
    r = catalogue.RULES.get(a.rule)
    rec: dict = {
        "@timestamp": iso(a.last_ts),
        "event": {
            "kind": "alert",
            "category": ["network", "intrusion_detection"],
            "type": ["info"],
            "id": a.id,
            "severity": severity_rank(a.severity),
            "start": iso(a.first_ts),
            "end": iso(a.last_ts),
            "count": a.count,
            "dataset": "otwatch.alerts",
        },
        "rule": {"id": a.rule, "name": r.title if r else a.rule, "category": a.category,
                 "ruleset": "otwatch", "reference": "docs/alerts.md#" + a.rule.replace(".", "")},
        "message": a.message,
        "network": {"protocol": a.protocol} if a.protocol else {},
        "source": {"ip": a.src} if a.src else {},
        "destination": {"ip": a.dst} if a.dst else {},
        "observer": {"type": "sensor", "product": "otwatch", "vendor": "otwatch"},
        "otwatch": {
            "schema": SCHEMA_VERSION,
            "severity": a.severity,
            "status": a.status,
            "evidence": [{"source": e.source, "frame": e.frame, "ts": e.ts, "flow_id": e.flow_id}
                         for e in a.evidence],
            "details": a.details,
        },
    }
    if a.port:
        rec["destination"]["port"] = a.port
    for side, asset, zone in (("source", a.src_asset, a.src_zone), ("destination", a.dst_asset, a.dst_zone)):
        if asset or zone:
            rec["otwatch"][side] = {k: v for k, v in (("asset", asset), ("zone", zone)) if v}
    if a.close_reason:
        rec["otwatch"]["close_reason"] = a.close_reason
    if delta is not None:
        rec["otwatch"]["delta"] = delta
    if observer:
        rec["observer"]["hostname"] = observer
    if a.technique:
        rec["threat"] = {"framework": catalogue.ATTACK_FRAMEWORK,
                         "technique": {"id": [a.technique], "name": [catalogue.TECHNIQUES.get(a.technique, "")],
                                       "reference": [catalogue.ATTACK_URL.format(a.technique)]}}
    return rec


def dumps(rec: dict) -> str:
    return json.dumps(_clean(rec), ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)


class JSONLAlerts:
    def __init__(self, stream: IO[str], observer: str = ""):
        self.stream = stream
        self.observer = observer
        self.lines = 0

    def __call__(self, changes: list[AlertChange]) -> None:
        self.write(changes)

    def write(self, changes: list[AlertChange]) -> None:
        for ch in changes:
            self.stream.write(dumps(record(ch.alert, ch.delta, self.observer)) + "\n")
            self.lines += 1
        self.stream.flush()
